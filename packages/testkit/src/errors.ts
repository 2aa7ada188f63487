/** Base class of every error the test kit throws. */
export class TestkitError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(`[@scale/testkit] ${message}`, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A server binary (postgres, initdb, redis-server, …) is not installed where the kit looks. */
export class BinaryMissingError extends TestkitError {
  readonly binary: string
  constructor(binary: string, hint: string) {
    super('E_TESTKIT_BINARY_MISSING', `cannot find \`${binary}\`. ${hint}`)
    this.binary = binary
  }
}

/** A server did not become ready (or a state was not reached) in time. */
export class ServerTimeoutError extends TestkitError {
  constructor(what: string, ms: number, options?: ErrorOptions) {
    super('E_TESTKIT_TIMEOUT', `${what} did not happen within ${ms} ms`, options)
  }
}

/**
 * A server exited or stopped answering while it started. The message ends with the tail of the
 * server's own log, which usually says why (a port taken, a bad setting, out of shared memory).
 */
export class ServerStartError extends TestkitError {
  readonly log: string
  constructor(what: string, log: string, options?: ErrorOptions) {
    super('E_TESTKIT_START_FAILED', `${what} failed to start; the end of its log:\n${log}`, options)
    this.log = log
  }
}

/** A command the kit ran (initdb, pg_basebackup, redis-cli --cluster create) exited with an error. */
export class CommandFailedError extends TestkitError {
  readonly command: string
  readonly output: string
  constructor(command: string, output: string) {
    super('E_TESTKIT_COMMAND_FAILED', `\`${command}\` failed:\n${output}`)
    this.command = command
    this.output = output
  }
}
