import type { FlowJob, JobNode } from 'bullmq'
import { type AnyJobDefinition, type JobDefinition, versionedJobName } from './define-job.js'
import { bullJobOptions, type EnqueueOptions } from './job-options.js'
import { validateForEnqueue } from './validate-payload.js'

/** One job of a flow: a typed payload for its definition, and the jobs that must finish before it. */
export interface FlowNode {
  readonly job: AnyJobDefinition
  readonly payload: unknown
  readonly options: EnqueueOptions | undefined
  readonly children: readonly FlowNode[]
}

/** What `enqueueFlow` returns: the IDs of every job of the flow, in the same tree shape. */
export interface EnqueuedFlow {
  readonly id: string
  readonly name: string
  readonly queue: string
  readonly children: readonly EnqueuedFlow[]
}

/**
 * One node of a flow, typed by its definition like `enqueue`: the parent runs once every child has
 * completed and reads their results with `context.childrenValues()`. Children may have children.
 *
 * @example
 * ```ts
 * await producer.enqueueFlow(
 *   flowJob(publishAlbum, { albumId: 'a1' }, {
 *     children: photoIds.map((photoId) => flowJob(resizeImage, { photoId, width: 640 })),
 *   }),
 * )
 * ```
 */
export function flowJob<Input, Output, Result>(
  job: JobDefinition<Input, Output, Result>,
  payload: Input,
  more: { options?: EnqueueOptions; children?: readonly FlowNode[] } = {},
): FlowNode {
  return { job: job as AnyJobDefinition, payload, options: more.options, children: more.children ?? [] }
}

/** @internal Validates every payload of the tree (as `enqueue` does) and builds BullMQ's flow. */
export async function bullFlow(node: FlowNode, prefix: string): Promise<FlowJob> {
  let data = validateForEnqueue(node.job, node.payload)
  if (data instanceof Promise) data = await data
  const children = await Promise.all(node.children.map((child) => bullFlow(child, prefix)))
  const opts = bullJobOptions(node.job, node.options)
  const flow = {
    name: versionedJobName(node.job.name, node.job.version),
    queueName: node.job.queue,
    prefix,
    data,
    opts,
  }
  return (children.length > 0 ? { ...flow, children } : flow) as FlowJob
}

/** @internal BullMQ's job tree as IDs. */
export function enqueuedFlow(node: JobNode, definition: FlowNode): EnqueuedFlow {
  return {
    id: String(node.job.id),
    name: definition.job.name,
    queue: definition.job.queue,
    children: (node.children ?? []).map((child, i) =>
      enqueuedFlow(child, definition.children[i] as FlowNode),
    ),
  }
}
