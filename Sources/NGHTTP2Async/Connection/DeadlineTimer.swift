import NIOCore

/// The one scheduled task a connection handler keeps at its state machine's next deadline (HTTP/2's
/// ``ConnectionStateMachine`` and HTTP/1.1's ``HTTP1ConnectionStateMachine`` alike). A deadline that moved later
/// leaves the task as it is: it fires early, the machine finds nothing due, and the timer is armed again.
struct DeadlineTimer {
    typealias Instant = ConnectionStateMachine.Instant

    private var scheduled: (task: Scheduled<Void>, deadline: Instant)?

    /// Whether a task must be scheduled for `next`: none fires by then. Asked first, so that the common call (the
    /// timer is already early enough) makes no closure.
    func needsTask(for next: Instant) -> Bool {
        guard let scheduled else { return true }
        return scheduled.deadline > next
    }

    /// Makes the timer fire at `next` (see ``needsTask(for:)``). `fire` runs on the event loop; it must call
    /// ``fired()`` first.
    mutating func arm(at next: Instant, now: Instant, on eventLoop: any EventLoop, _ fire: @escaping () -> Void) {
        scheduled?.task.cancel()
        let task = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(max(next - now, .zero))) { fire() }
        scheduled = (task, next)
    }

    /// The task ran: the next ``arm(at:now:on:_:)`` schedules a new one.
    mutating func fired() {
        scheduled = nil
    }

    /// The connection is done: no deadline fires any more.
    mutating func cancel() {
        scheduled?.task.cancel()
        scheduled = nil
    }
}
