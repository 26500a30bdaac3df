import NIOCore

/// What a client's channel asks a forward proxy for: a tunnel to `host:port` (the target), with an optional
/// `Proxy-Authorization` value.
struct ProxyTunnel: Sendable, Hashable {
    /// The target's host (an IPv6 address without brackets).
    var host: String
    /// The target's port.
    var port: Int
    /// The `Proxy-Authorization` field value (for example `Basic dXNlcjpwYXNz`), or `nil`.
    var authorization: String?

    /// `host:port` as the CONNECT request-target and `Host` want it: an IPv6 address in brackets
    /// ([RFC 9110 §9.3.6](https://www.rfc-editor.org/rfc/rfc9110.html#section-9.3.6), RFC 3986 authority form).
    var authority: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The CONNECT request head, ending in the empty line.
    var requestHead: String {
        var head = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
        if let authorization { head += "Proxy-Authorization: \(authorization)\r\n" }
        return head + "\r\n"
    }
}

/// The first stage of a client channel that goes through a forward proxy: on channelActive it sends
/// `CONNECT host:port HTTP/1.1`, reads the proxy's response head (status line and fields up to the empty line, at
/// most ``maximumHeadLength`` bytes), and on a 2xx calls `established` (which adds the next stages behind it),
/// passes on any bytes that followed the head, and removes itself.
///
/// Anything else fails `promise` and closes the channel: a non-2xx status with
/// ``HTTP2Error/proxyConnectFailed(_:)`` carrying the status line (e.g. `407 Proxy Authentication Required`), a head
/// that is not HTTP/1.x or too long likewise, no complete head before `deadline` with ``HTTP2Error/connectTimeout``,
/// and the proxy closing first with ``HTTP2Error/proxyConnectFailed(_:)`` too.
final class ProxyTunnelHandler<Result: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The longest response head accepted (status line and fields): 16 KiB.
    static var maximumHeadLength: Int { 16 << 10 }

    private let tunnel: ProxyTunnel
    private let deadline: NIODeadline
    private var promise: EventLoopPromise<Result>?
    /// Adds the stages that follow the tunnel (behind this handler) and returns what the promise succeeds with,
    /// or `nil` when that is known only later (the handshake of TLS): the stages then complete the promise.
    private let established: (ChannelHandlerContext, EventLoopPromise<Result>) throws -> Result?
    private var received: ByteBuffer?
    private var requested = false
    private var timeout: Scheduled<Void>?

    init(
        tunnel: ProxyTunnel,
        deadline: NIODeadline,
        promise: EventLoopPromise<Result>,
        established: @escaping (ChannelHandlerContext, EventLoopPromise<Result>) throws -> Result?
    ) {
        self.tunnel = tunnel
        self.deadline = deadline
        self.promise = promise
        self.established = established
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        timeout = loop.scheduleTask(deadline: deadline) { [self] in
            timeout = nil
            // Still connecting: the bootstrap's own connect timeout (the same deadline) reports it.
            guard context.channel.isActive else { return }
            fail(context: context, HTTP2Error.connectTimeout)
        }
        if context.channel.isActive { sendRequest(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
        if let promise {
            self.promise = nil
            promise.fail(HTTP2Error.proxyConnectFailed("the tunnel handler was removed before the proxy answered"))
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        sendRequest(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
        if let promise {
            self.promise = nil
            promise.fail(HTTP2Error.proxyConnectFailed("the proxy closed the connection before answering CONNECT"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard promise != nil else { return context.fireErrorCaught(error) }
        fail(context: context, error)
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard !requested, promise != nil else { return }
        requested = true
        let head = tunnel.requestHead
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count)
        buffer.writeString(head)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let promise else { return }  // failed: the channel is closing
        var input = unwrapInboundIn(data)
        if received == nil {
            received = input
        } else {
            received!.writeBuffer(&input)
        }
        guard let buffer = received else { return }
        guard let end = Self.endOfHead(in: buffer) else {
            if buffer.readableBytes > Self.maximumHeadLength {
                fail(context: context, HTTP2Error.proxyConnectFailed("the proxy's response head is longer than \(Self.maximumHeadLength) bytes"))
            }
            return
        }
        guard end <= Self.maximumHeadLength else {
            return fail(context: context, HTTP2Error.proxyConnectFailed("the proxy's response head is longer than \(Self.maximumHeadLength) bytes"))
        }
        var rest = buffer
        let head = rest.readString(length: end) ?? ""
        received = nil
        let statusLine = Self.statusLine(of: head)
        guard let status = Self.status(of: statusLine) else {
            return fail(context: context, HTTP2Error.proxyConnectFailed("not an HTTP/1.1 response: \(statusLine.prefix(200))"))
        }
        guard (200..<300).contains(status.code) else {
            return fail(context: context, HTTP2Error.proxyConnectFailed(status.line))
        }
        timeout?.cancel()
        timeout = nil
        self.promise = nil
        let result: Result?
        do {
            result = try established(context, promise)
        } catch {
            promise.fail(error)
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        // The next stages are in place behind this handler: they get what followed the head, then the bytes go to
        // them directly. The promise succeeds (without TLS) only once this handler is gone.
        if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if let result { promise.succeed(result) }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        timeout?.cancel()
        timeout = nil
        guard let promise else { return }
        self.promise = nil
        received = nil
        promise.fail(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    // MARK: - Parsing the response head (RFC 9112 §2.1, §4)

    /// The length of the head including its final CRLF CRLF (a bare LF LF is accepted too, RFC 9112 §2.2), or `nil`
    /// while it is incomplete.
    static func endOfHead(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            var index = 0
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "\n") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { return index + 2 }
                    if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "\r"), bytes[index + 2] == UInt8(ascii: "\n") {
                        return index + 3
                    }
                }
                index += 1
            }
            return nil
        }
    }

    /// The first line of `head`, without its line ending.
    static func statusLine(of head: String) -> String {
        // By UTF-8 bytes: as Characters, "\r\n" is one grapheme and would not split at "\n".
        var line = Substring(head).utf8.prefix { $0 != UInt8(ascii: "\n") }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return String(Substring(line))
    }

    /// The status code and `code reason` of a status line `HTTP/1.x code reason`, or `nil` if it is not one.
    static func status(of statusLine: String) -> (code: Int, line: String)? {
        guard statusLine.hasPrefix("HTTP/1.") else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return nil }
        let rest = parts[1]
        let codeText = rest.prefix { $0 != " " }
        guard codeText.count == 3, codeText.allSatisfy(\.isASCII), let code = Int(codeText), (100...599).contains(code) else {
            return nil
        }
        var line = Substring(rest)
        while line.last == " " || line.last == "\t" { line.removeLast() }
        return (code, String(line))
    }
}

@available(*, unavailable)
extension ProxyTunnelHandler: Sendable {}
