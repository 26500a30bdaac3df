import NIOCore

/// How the HTTP/1.1 handlers flush: writes made while a read burst is under way go out once, at its end
/// (`channelReadComplete` calls ``flushIfNeeded()``); writes from elsewhere go out at the end of the event-loop tick.
protocol BurstFlushing: AnyObject {
    var context: ChannelHandlerContext? { get }
    /// Between `channelRead` and `channelReadComplete`.
    var isReading: Bool { get set }
    /// Something was written and not yet flushed.
    var needsFlush: Bool { get set }
}

extension BurstFlushing {
    /// Flushes what was written, unless a read burst is under way (its end flushes).
    func flushIfNeeded() {
        guard needsFlush, !isReading, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Flushes now.
    func flush() {
        needsFlush = false
        context?.flush()
    }

    /// Flushes at the end of this read burst, or of this event-loop tick.
    func flushSoon() {
        if isReading {
            needsFlush = true
            return
        }
        guard !needsFlush, let context else { return }
        needsFlush = true
        context.eventLoop.assumeIsolated().execute { [self] in flushIfNeeded() }
    }
}
