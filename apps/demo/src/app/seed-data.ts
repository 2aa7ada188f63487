import type { UserJson } from './schema.js'

// Small vocabularies; combined per user they give ~10^12 distinct profiles.
const FIRST = [
  'Ada',
  'Alan',
  'Grace',
  'Linus',
  'Margaret',
  'Dennis',
  'Barbara',
  'Ken',
  'Frances',
  'John',
  'Radia',
  'Tim',
  'Sophie',
  'Guido',
  'Hedy',
  'Donald',
  'Katherine',
  'Edsger',
  'Annie',
  'Bjarne',
  'Joan',
  'Niklaus',
  'Karen',
  'James',
  'Shafi',
  'Leslie',
  'Mary',
  'Brian',
  'Jean',
  'Robin',
  'Lynn',
  'Ivan',
  'Evelyn',
  'Carl',
  'Adele',
  'Peter',
  'Susan',
  'Rob',
  'Elena',
  'Marco',
]
const LAST = [
  'Lovelace',
  'Turing',
  'Hopper',
  'Torvalds',
  'Hamilton',
  'Ritchie',
  'Liskov',
  'Thompson',
  'Allen',
  'McCarthy',
  'Perlman',
  'Berners-Lee',
  'Wilson',
  'van Rossum',
  'Lamarr',
  'Knuth',
  'Johnson',
  'Dijkstra',
  'Easley',
  'Stroustrup',
  'Clarke',
  'Wirth',
  'Jones',
  'Gosling',
  'Goldwasser',
  'Lamport',
  'Keller',
  'Kernighan',
  'Sammet',
  'Milner',
  'Conway',
  'Sutherland',
  'Berezin',
  'Hewitt',
  'Goldberg',
  'Naur',
  'Kare',
  'Pike',
  'Garcia',
  'Rossi',
]
const STREETS = [
  'Main St',
  'Oak Ave',
  'Pine Rd',
  'Maple Dr',
  'Cedar Ln',
  'Elm St',
  'Washington Blvd',
  'Lake Rd',
  'Hill St',
  'Park Ave',
  'Sunset Blvd',
  'River Rd',
  'Church St',
  'Mill Rd',
  'Spring St',
  'Ridge Rd',
]
const CITIES: readonly (readonly [string, string, number])[] = [
  ['New York', 'NY', 10001],
  ['Los Angeles', 'CA', 90001],
  ['Chicago', 'IL', 60601],
  ['Houston', 'TX', 77001],
  ['Phoenix', 'AZ', 85001],
  ['Philadelphia', 'PA', 19101],
  ['San Antonio', 'TX', 78201],
  ['San Diego', 'CA', 92101],
  ['Dallas', 'TX', 75201],
  ['Seattle', 'WA', 98101],
  ['Denver', 'CO', 80201],
  ['Boston', 'MA', 2101],
  ['Portland', 'OR', 97201],
  ['Atlanta', 'GA', 30301],
  ['Miami', 'FL', 33101],
  ['Austin', 'TX', 73301],
]
const PHONE_TYPES = ['home', 'mobile', 'work'] as const

/** splitmix32: a fast, well-mixed 32-bit generator; the same state always gives the same sequence. */
function generator(state: number): () => number {
  let s = state >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return ((z ^ (z >>> 16)) >>> 0) / 4_294_967_296
  }
}

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T
}

function digits(random: () => number, count: number): string {
  let out = ''
  for (let i = 0; i < count; i++) out += Math.floor(random() * 10)
  return out
}

/**
 * The profile of user `id` in the data set numbered `seed`. A pure function of both, so a test can
 * compute what `GET /users/:id` must return without reading the database.
 */
export function seedUser(seed: number, id: number): UserJson {
  // Each user gets its own stream, so user 70,000 needs no walk through the 69,999 before it.
  const random = generator(Math.imul(seed, 0x27d4eb2d) ^ Math.imul(id, 0x165667b1))
  const [city, state, zip] = pick(random, CITIES)
  const phones = 1 + Math.floor(random() * 2)
  const used = new Set<string>()
  const phoneNumbers: UserJson['phoneNumbers'] = []
  for (let i = 0; i < phones; i++) {
    const type = pick(
      random,
      PHONE_TYPES.filter((t) => !used.has(t)),
    )
    used.add(type)
    phoneNumbers.push({ type, number: `${digits(random, 3)} ${digits(random, 3)}-${digits(random, 4)}` })
  }
  return {
    id,
    firstName: pick(random, FIRST),
    lastName: pick(random, LAST),
    address: {
      streetAddress: `${1 + Math.floor(random() * 9_999)} ${pick(random, STREETS)}`,
      city,
      state,
      postalCode: String(zip + Math.floor(random() * 90)).padStart(5, '0'),
    },
    phoneNumbers,
  }
}

/** Seeded accounts log in as `user<id>` with this password (one demo password for all). */
export const SEED_PASSWORD = 'correct horse battery staple'

export function seedUsername(id: number): string {
  return `user${id}`
}
