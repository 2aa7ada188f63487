export { type DeadlineHandlers, withCommandDeadline } from './command-deadline.js'
export { type DeadlineQueue, deadlineQueue, type PendingDeadline } from './deadline-queue.js'
export { isNoScript, RedisScript } from './redis-script.js'
export { createWriteCoalescer, type WriteCoalescer, type WriteCoalescerOptions } from './write-coalescer.js'
