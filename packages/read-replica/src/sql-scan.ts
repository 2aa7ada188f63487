/**
 * What one SQL text contains that matters for routing: every function it calls (by the name
 * PostgreSQL would look up) and the first statement keyword that writes or changes session
 * state. Works on the compiled text, so builder nodes, raw `sql` fragments, `sql.raw()`, quoted
 * and schema-qualified names are all seen the same way the server will see them.
 */
export interface SqlScan {
  /** called functions, lower-cased unless quoted; `schema.name` kept as `['schema', 'name']` */
  readonly functions: readonly (readonly string[])[]
  /** 'dml' (insert/update/delete/merge), 'locking' (FOR UPDATE/SHARE), 'other' (set, lock, ;, …) */
  readonly writes: 'dml' | 'locking' | 'other' | undefined
  /** the text could not be read with confidence (an unterminated string or comment) */
  readonly unreadable: boolean
}

type TokenKind = 'word' | 'quoted' | 'punct' | 'other'
interface Token {
  kind: TokenKind
  text: string
}

const DML = new Set(['insert', 'update', 'delete', 'merge'])
// Statements (or clauses) that write, take locks or change the session and can follow other words
// of one statement (`select … into t`, `explain analyze`, `explain execute`, `explain create table
// as`, `explain declare`): seen anywhere as a bare word, they send the query to the primary.
const OTHER_WRITES = new Set('alter analyse analyze create declare drop execute into'.split(' '))
// Statements that can only begin a statement (a second statement is caught by its ';'): they count
// as the first word only, because the same words name columns or clauses of reads (`select load,
// release from …`, `fetch first`, `case … end`). START TRANSACTION on a replica's pooled connection
// would leave it in a snapshot every later read there is served from; FETCH/MOVE/CLOSE act on a
// cursor DECLAREd on the primary.
const FIRST_WORD_WRITES = new Set(
  (
    'abort begin call checkpoint close cluster comment commit copy deallocate discard do end fetch grant ' +
    'import listen load lock move notify prepare reassign refresh reindex release reset revoke rollback ' +
    'savepoint security set start truncate unlisten vacuum'
  ).split(' '),
)
// Words followed by "(" that are syntax, not a call of a catalog function (or are read-only
// functions PostgreSQL parses as keywords).
const NOT_A_CALL = new Set([
  ...(
    'all and any array as between by case cast coalesce collate cube current_time current_timestamp ' +
    'distinct else except exists extract filter from greatest group grouping having ilike in intersect is ' +
    'join lateral least like limit localtime localtimestamp materialized normalize not nullif offset on ' +
    'only or over overlay partition position recursive rollup row select sets similar some substring ' +
    'then trim union using values when where with within'
  ).split(' '),
  // type names with a modifier: varchar(10), numeric(10, 2), timestamp(3)
  ...'bit char character decimal float interval numeric time timestamp timestamptz varbit varchar varying'.split(
    ' ',
  ),
])

/** Scans compiled SQL; never throws. */
export function scanSql(sql: string): SqlScan {
  const tokens: Token[] = []
  const unreadable = !tokenize(sql, tokens)
  const functions: string[][] = []
  let writes: SqlScan['writes']
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token
    if (token.kind === 'word') {
      const locking = token.text === 'for' ? lockingClauseLength(tokens, i) : 0
      if (locking > 0) {
        writes ??= 'locking'
        i += locking
      } else if (DML.has(token.text)) writes = writes === undefined || writes === 'locking' ? 'dml' : writes
      else if (OTHER_WRITES.has(token.text) || (i === 0 && FIRST_WORD_WRITES.has(token.text)))
        writes ??= 'other'
    } else if (token.kind === 'punct' && token.text === ';') {
      // a second statement: whatever it is, it is not provably a read
      writes ??= 'other'
    } else if (token.kind === 'punct' && token.text === '(') {
      const name = calledName(tokens, i)
      if (name) functions.push(name)
    }
  }
  return { functions, writes, unreadable }
}

// FOR UPDATE | FOR SHARE | FOR NO KEY UPDATE | FOR KEY SHARE: how many words follow FOR.
function lockingClauseLength(tokens: readonly Token[], i: number): number {
  const next = tokens[i + 1]?.text
  if (next === 'update' || next === 'share') return 1
  if (next === 'key' && tokens[i + 2]?.text === 'share') return 2
  if (next === 'no' && tokens[i + 2]?.text === 'key' && tokens[i + 3]?.text === 'update') return 3
  return 0
}

// The name before "(" when it is a function call: `f(`, `"f"(`, `s.f(`, `"s"."f"(`.
function calledName(tokens: readonly Token[], open: number): string[] | undefined {
  const name = tokens[open - 1]
  if (!name || (name.kind !== 'word' && name.kind !== 'quoted')) return undefined
  if (name.kind === 'word' && NOT_A_CALL.has(name.text)) return undefined
  let start = open - 1
  const parts = [name.text]
  const dot = tokens[start - 1]
  const schema = tokens[start - 2]
  if (dot?.text === '.' && dot.kind === 'punct' && (schema?.kind === 'word' || schema?.kind === 'quoted')) {
    parts.unshift(schema.text)
    start -= 2
  }
  const before = tokens[start - 1]
  // `x::numeric(10,2)` and `as t(a, b)` / `cast(x as varchar(3))`: a type or a column list
  if (before?.kind === 'punct' && before.text === '::') return undefined
  if (before?.kind === 'word' && before.text === 'as') return undefined
  // `with c(a, b) as (…)`: the first CTE's column list (later ones, after a comma, stay unknown)
  if (before?.kind === 'word' && (before.text === 'with' || before.text === 'recursive')) return undefined
  return parts
}

/**
 * `$tag$` or `$$` at the regex's `lastIndex`: a tag of any length, whose characters PostgreSQL
 * allows (letters, `_`, digits after the first, and every non-ASCII character).
 */
const DOLLAR_TAG = /\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y

/** Splits SQL into words, quoted identifiers and punctuation; false when something is unterminated. */
function tokenize(sql: string, out: Token[]): boolean {
  const n = sql.length
  let i = 0
  while (i < n) {
    const c = sql.charCodeAt(i)
    // whitespace
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) {
      i++
      continue
    }
    // -- comment, ended by \n or \r as PostgreSQL's lexer ends it (a \r alone too)
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      i += 2
      while (i < n && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) i++
      continue
    }
    // /* comment */ (nests in PostgreSQL)
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      let depth = 1
      i += 2
      while (i < n && depth > 0) {
        if (sql.startsWith('/*', i)) {
          depth++
          i += 2
        } else if (sql.startsWith('*/', i)) {
          depth--
          i += 2
        } else i++
      }
      if (depth > 0) return false
      continue
    }
    // 'string' (with E'' backslash escapes when prefixed by E)
    if (c === 39) {
      const prev = out[out.length - 1]
      const escapes = prev?.kind === 'other' && prev.text === 'E'
      const end = endOfQuoted(sql, i, 39, escapes)
      if (end < 0) return false
      out.push({ kind: 'other', text: "'" })
      i = end
      continue
    }
    // "quoted identifier"
    if (c === 34) {
      const end = endOfQuoted(sql, i, 34, false)
      if (end < 0) return false
      out.push({ kind: 'quoted', text: sql.slice(i + 1, end - 1).replaceAll('""', '"') })
      i = end
      continue
    }
    // $1 parameter, or $tag$ dollar-quoted string $tag$
    if (c === 36) {
      DOLLAR_TAG.lastIndex = i
      const match = DOLLAR_TAG.exec(sql)
      if (match) {
        const close = sql.indexOf(match[0], i + match[0].length)
        if (close < 0) return false
        out.push({ kind: 'other', text: "'" })
        i = close + match[0].length
        continue
      }
      let j = i + 1
      while (j < n && isDigit(sql.charCodeAt(j))) j++
      out.push({ kind: 'other', text: '$' })
      i = j
      continue
    }
    if (isWordStart(c)) {
      let j = i + 1
      while (j < n && isWordPart(sql.charCodeAt(j))) j++
      const word = sql.slice(i, j)
      // E'…' (escape string), B'…', X'…', U&'…': a prefix glued to a string is not a word
      if (sql.charCodeAt(j) === 39 && /^[EeBbXxNn]$/.test(word)) {
        out.push({ kind: 'other', text: /^[Ee]$/.test(word) ? 'E' : 'prefix' })
      } else if (sql.charCodeAt(j) === 38 && (word === 'U' || word === 'u')) {
        // U&"ident" / U&'string': unicode escapes we do not decode; treat the name as unknown
        out.push({ kind: 'other', text: 'prefix' })
        i = j + 1
        continue
      } else out.push({ kind: 'word', text: word.toLowerCase() })
      i = j
      continue
    }
    if (isDigit(c)) {
      let j = i + 1
      while (j < n && (isWordPart(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++
      out.push({ kind: 'other', text: '0' })
      i = j
      continue
    }
    if (c === 58 && sql.charCodeAt(i + 1) === 58) {
      out.push({ kind: 'punct', text: '::' })
      i += 2
      continue
    }
    out.push({ kind: 'punct', text: sql[i] as string })
    i++
  }
  return true
}

/** Index just past the closing quote; a doubled quote is an escaped one. -1 when unterminated. */
function endOfQuoted(sql: string, start: number, quote: number, backslashEscapes: boolean): number {
  let i = start + 1
  while (i < sql.length) {
    const c = sql.charCodeAt(i)
    if (backslashEscapes && c === 92) {
      i += 2
      continue
    }
    if (c === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        i += 2
        continue
      }
      return i + 1
    }
    i++
  }
  return -1
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

function isWordStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c > 127
}

function isWordPart(c: number): boolean {
  return isWordStart(c) || isDigit(c) || c === 36
}
