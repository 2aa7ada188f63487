/** The lease tokens this process issues, and which of them still belong to a running flight. */
export class LeaseTokens {
  readonly #origin: string
  #issued = 0
  /** Lease tokens of the flights still running, to tell this process's orphaned leases from live ones. */
  readonly #active = new Set<string>()

  constructor(origin: string) {
    this.#origin = origin
  }

  /** A new token, active until `retire`. */
  issue(): string {
    const token = `${this.#origin}:${++this.#issued}`
    this.#active.add(token)
    return token
  }

  retire(token: string): void {
    this.#active.delete(token)
  }

  /** A token this process issued whose flight has ended (only possible after a failed write or release). */
  isOrphan(holder: string): boolean {
    return holder.startsWith(`${this.#origin}:`) && !this.#active.has(holder)
  }
}
