import NIOCore
import NGHTTP2

/// Tells, on a cleartext server connection, the HTTP/2 client preface (RFC 9113 §3.4: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`)
/// from an HTTP/1.1 request by the first bytes, installs the handler of the protocol found, hands it those bytes and
/// removes itself. An HTTP/1.1 request can never start with the preface's 24 bytes (`PRI` with version `HTTP/2.0` is
/// not HTTP/1.x), so the first byte that differs decides, and most HTTP/1.1 requests are known by their first byte.
///
/// A client that sends nothing within the timeout gets what a silent HTTP/2 client got before HTTP/1.1 was served
/// (the HTTP/2 handler's SETTINGS, then GOAWAY NO_ERROR with last stream 0), and the connection is closed; an
/// HTTP/1.1 client ignores those bytes and sees the close.
final class CleartextProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The HTTP/2 client connection preface (RFC 9113 §3.4).
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var buffered: ByteBuffer?
    private var promise: EventLoopPromise<NegotiatedConnection>?
    private let timeout: Duration?
    private var timer: Scheduled<Void>?
    private let install: (ApplicationProtocol, CleartextProtocolSniffer) throws -> NegotiatedConnection

    init(
        promise: EventLoopPromise<NegotiatedConnection>,
        timeout: Duration?,
        install: @escaping (ApplicationProtocol, CleartextProtocolSniffer) throws -> NegotiatedConnection
    ) {
        self.promise = promise
        self.timeout = timeout
        self.install = install
    }

    /// What the first bytes of a connection say: `.http2` once they are the whole preface, `.http1` as soon as one
    /// differs from it, `nil` while they are a part of it.
    static func detect(_ bytes: ByteBuffer) -> ApplicationProtocol? {
        let count = min(bytes.readableBytes, preface.count)
        let matches = bytes.withUnsafeReadableBytes { buffer in
            (0..<count).allSatisfy { buffer[$0] == preface[$0] }
        }
        guard matches else { return .http1 }
        return count == preface.count ? .http2 : nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let timeout else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            timedOut(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var buffered {
            buffered.writeBuffer(&bytes)
            bytes = buffered
        }
        guard let promise else { return context.fireChannelRead(wrapInboundOut(bytes)) }
        guard let found = Self.detect(bytes) else {
            buffered = bytes
            return
        }
        self.promise = nil
        buffered = nil
        timer?.cancel()
        do {
            promise.succeed(try install(found, self))
        } catch {
            return fail(context: context, error, promise)
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func timedOut(context: ChannelHandlerContext) {
        guard let promise else { return }
        self.promise = nil
        do {
            let connection = try install(.http2, self)
            promise.succeed(connection)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            if case .http2(let reference) = connection { reference.execute { $0.terminate(.noError) } }
        } catch {
            fail(context: context, error, promise)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if let promise {
            self.promise = nil
            promise.fail(HTTP2Error.connectionClosed(errorCode: nil))
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if let promise {
            self.promise = nil
            promise.fail(HTTP2Error.connectionClosed(errorCode: nil))
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error, _ promise: EventLoopPromise<NegotiatedConnection>? = nil) {
        let promise = promise ?? self.promise
        self.promise = nil
        promise?.fail(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension CleartextProtocolSniffer: Sendable {}
