export { createWriteCoalescer, type WriteCoalescer, type WriteCoalescerOptions } from './write-coalescer.js'
