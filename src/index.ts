/**
 * effect-redis-streams: Redis as a typed, composable backbone for streaming applications on Effect 4.
 *
 * @since 0.1.0
 */

export * as CommandBus from "./CommandBus.js"
export * as DurableStreams from "./DurableStreams.js"
export * as DurableStreamsError from "./DurableStreamsError.js"
export * as DurableStreamsHttp from "./DurableStreamsHttp.js"
export * as EventBus from "./EventBus.js"
export * as EventSink from "./EventSink.js"
export * as EventSinkError from "./EventSinkError.js"
export * as Inspector from "./Inspector.js"
export * as Message from "./Message.js"
export * as Publisher from "./Publisher.js"
export * as PartitionedTopics from "./PartitionedTopics.js"
export * as RedisClient from "./RedisClient.js"
export * as RedisError from "./RedisError.js"
export * as RedisScript from "./RedisScript.js"
export * as ResumableStream from "./ResumableStream.js"
export * as ResumableStreamError from "./ResumableStreamError.js"
export * as ResumableChat from "./ResumableChat.js"
export * as ResumableStreamHttp from "./ResumableStreamHttp.js"
export * as StreamAdapter from "./StreamAdapter.js"
export * as StreamAdapterError from "./StreamAdapterError.js"
export * as SubjectStorage from "./SubjectStorage.js"
export * as SubjectStorageError from "./SubjectStorageError.js"
export * as Subscriber from "./Subscriber.js"
