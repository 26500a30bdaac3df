import NIOCore

/// Runs tasks on a NIO event loop, so a request handler starts on its connection's thread and hands its response
/// back without a thread hop.
///
/// Only a task executor, not a serial one: jobs run as nonisolated code that prefers this executor. (Running them
/// isolated to a serial executor made every nonisolated async call switch away and enqueue the job again.)
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}
