/** What a balancer sees of a replica. */
export interface BalancerCandidate {
  readonly name: string
  /** relative share for `'weighted'`; from the replica's `weight` option */
  readonly weight: number
  /** queries in flight on this replica right now */
  readonly outstanding: number
}

/** Picks one replica among healthy candidates (never called with an empty list). */
export interface Balancer {
  pick<T extends BalancerCandidate>(candidates: readonly T[]): T
}

export type BalanceStrategy = 'round-robin' | 'random' | 'weighted' | 'least-outstanding' | 'p2c'

function randomIndex(length: number): number {
  return Math.floor(Math.random() * length)
}

/** Cycles through candidates; a counter, not a position, so exclusions do not skew it much. */
export function roundRobinBalancer(): Balancer {
  let counter = 0
  return {
    pick(candidates) {
      counter = (counter + 1) % 1_000_000_007
      return candidates[counter % candidates.length] as (typeof candidates)[number]
    },
  }
}

export function randomBalancer(): Balancer {
  return { pick: (candidates) => candidates[randomIndex(candidates.length)] as (typeof candidates)[number] }
}

/** Random, proportional to `weight` (a weight of 0 only serves when it is the only candidate). */
export function weightedBalancer(): Balancer {
  return {
    pick(candidates) {
      let total = 0
      for (const candidate of candidates) total += Math.max(0, candidate.weight)
      if (total <= 0) return candidates[randomIndex(candidates.length)] as (typeof candidates)[number]
      let point = Math.random() * total
      for (const candidate of candidates) {
        point -= Math.max(0, candidate.weight)
        if (point < 0) return candidate
      }
      return candidates[candidates.length - 1] as (typeof candidates)[number]
    },
  }
}

/** Fewest in-flight queries; ties broken round-robin so idle replicas share the load. */
export function leastOutstandingBalancer(): Balancer {
  let counter = 0
  return {
    pick(candidates) {
      counter = (counter + 1) % 1_000_000_007
      const offset = counter % candidates.length
      let best = candidates[offset] as (typeof candidates)[number]
      for (let i = 1; i < candidates.length; i++) {
        const candidate = candidates[(offset + i) % candidates.length] as (typeof candidates)[number]
        if (candidate.outstanding < best.outstanding) best = candidate
      }
      return best
    },
  }
}

/** Power of two choices: two random candidates, the less busy one wins (no global scan). */
export function powerOfTwoChoicesBalancer(): Balancer {
  return {
    pick(candidates) {
      const first = candidates[randomIndex(candidates.length)] as (typeof candidates)[number]
      if (candidates.length === 1) return first
      let second = candidates[randomIndex(candidates.length - 1)] as (typeof candidates)[number]
      if (second === first) second = candidates[candidates.length - 1] as (typeof candidates)[number]
      return second.outstanding < first.outstanding ? second : first
    },
  }
}

export function createBalancer(strategy: BalanceStrategy | Balancer): Balancer {
  if (typeof strategy === 'object') return strategy
  switch (strategy) {
    case 'round-robin':
      return roundRobinBalancer()
    case 'random':
      return randomBalancer()
    case 'weighted':
      return weightedBalancer()
    case 'least-outstanding':
      return leastOutstandingBalancer()
    case 'p2c':
      return powerOfTwoChoicesBalancer()
  }
}

/**
 * Calls a balancer and makes sure the answer is one of the candidates: a custom balancer that
 * throws or returns something else must not break routing, so the first candidate is used.
 */
export function safePick<T extends BalancerCandidate>(balancer: Balancer, candidates: readonly T[]): T {
  try {
    const picked = balancer.pick(candidates)
    if (candidates.includes(picked)) return picked
  } catch {
    // fall through
  }
  return candidates[0] as T
}
