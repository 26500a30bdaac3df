import COpenSSL
import NIOCore

/// Fired (as a user inbound event) by ``TLSHandler`` once the handshake has completed, before any decrypted byte
/// is passed up the pipeline. What the connection speaks is decided above it (``ChannelSetup``), from the ALPN result.
struct TLSHandshakeCompleted: Sendable, Hashable {
    /// The ALPN protocol selected (`"h2"`), or `nil` when none was.
    var negotiatedProtocol: String?
    /// The ALPN protocols offered: on a client its own list, on a server the client's (empty without ALPN).
    var offeredProtocols: [String]
    /// OpenSSL's name of the protocol version: `"TLSv1.3"` or `"TLSv1.2"`.
    var tlsVersion: String
    /// OpenSSL's name of the cipher, for example `"TLS_AES_128_GCM_SHA256"` or
    /// `"ECDHE-ECDSA-AES128-GCM-SHA256"`.
    var cipher: String?
    /// The peer certificate's subject in RFC 2253 form (`"CN=localhost"`), or `nil` when the peer
    /// sent no certificate (a client without one).
    var peerCertificateSubject: String?
}

/// TLS (OpenSSL, through a pair of memory BIOs) as a NIO channel handler: ciphertext below,
/// plaintext above.
///
/// Place it first in a pipeline, directly above the socket:
///
/// ```swift
/// let tls = try TLSHandler(context: context, role: .client, serverHostname: "example.org")
/// try channel.pipeline.syncOperations.addHandler(tls)
/// try channel.pipeline.syncOperations.addHandler(connectionHandler)
/// ```
///
/// - The handshake starts when the channel becomes active (or when the handler is added to an
///   active channel). Writes made before it completes are buffered and sent, in order, after it.
/// - On success it fires ``TLSHandshakeCompleted`` as a user inbound event, then passes plaintext up.
/// - On failure it fires `errorCaught` with a ``TLSError`` and closes the channel: a failed handshake
///   (``TLSError/handshakeFailed(reason:)``, ``TLSError/certificateVerifyFailed(reason:)``, and the
///   server's `no_application_protocol` alert as ``TLSError/alpnMismatch(offered:negotiated:)``), no
///   handshake within `handshakeTimeout` (``TLSError/handshakeTimeout(_:)``), a bad record or fatal
///   alert later on (``TLSError/connectionFailed(reason:)``), and a peer that closes the TCP connection
///   mid-handshake or mid-record (``TLSError/unexpectedEOF(duringHandshake:)``, fired before
///   `channelInactive`).
/// - Writes are encrypted on flush (small writes are coalesced into full records, large ones are split
///   into 16 KiB records). `close` sends close_notify first; a received close_notify is answered and the
///   channel closed.
///
/// Confined to its channel's event loop.
final class TLSHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Which side of the handshake this handler plays.
    enum Role: Sendable, Hashable {
        case client
        case server
    }

    private enum State {
        /// Waiting for the channel to become active.
        case idle
        case handshaking
        case active
        /// Closing (close_notify sent, or failed): input is ignored, writes fail.
        case closing
        /// The channel is inactive or the handler was removed.
        case closed
    }

    private struct PendingWrite {
        var buffer: ByteBuffer
        var promise: EventLoopPromise<Void>?
    }

    let tlsContext: TLSContext
    let role: Role
    let handshakeTimeout: Duration

    /// The `SSL *`, freed in deinit (with both BIOs, which it owns).
    private let ssl: OpaquePointer
    /// Ciphertext from the network, read by OpenSSL (owned by `ssl`).
    private let networkInput: OpaquePointer
    /// Ciphertext written by OpenSSL, for the network (owned by `ssl`).
    private let networkOutput: OpaquePointer

    private var state: State = .idle
    private var pendingWrites = CircularBuffer<PendingWrite>()
    /// How many of `pendingWrites` (from the front) have been flushed.
    private var flushedCount = 0
    private var timeout: Scheduled<Void>?
    private var receivedCloseNotify = false
    private var outputClosed = false

    /// Server: the ALPN names the client offered (set by the ALPN callback during the handshake).
    var clientOfferedProtocols: [String] = []
    /// Server: the ALPN callback found no protocol in common and failed the handshake.
    var rejectedApplicationProtocols = false

    /// Plaintext bytes per `SSL_write_ex` call before the ciphertext is moved to the channel.
    private static let writeSlice = 256 * 1024
    /// Writes smaller than this are coalesced into one record-sized buffer.
    private static let recordSize = 16 * 1024

    /// A TLS handler for one connection.
    ///
    /// - Parameters:
    ///   - context: The shared ``TLSContext`` (identity, trust roots, ALPN, ciphers).
    ///   - role: `.client` or `.server`.
    ///   - serverHostname: Client only: the host connected to, used for SNI and certificate checks
    ///     (``NGHTTP2TLSConfiguration/serverName`` overrides it). Required with full verification.
    ///   - handshakeTimeout: Time allowed for the handshake before the connection is closed.
    /// - Throws: ``TLSError/invalidConfiguration(reason:)`` when the connection cannot be set up.
    init(
        context: TLSContext,
        role: Role,
        serverHostname: String? = nil,
        handshakeTimeout: Duration = .seconds(10)
    ) throws {
        let ssl = try context.makeSSL(role: role, serverHostname: serverHostname)
        guard let input = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.invalidConfiguration(reason: TLSError.drainErrorQueue(fallback: "BIO_new failed"))
        }
        guard let output = BIO_new(BIO_s_mem()) else {
            BIO_free(input)
            SSL_free(ssl)
            throw TLSError.invalidConfiguration(reason: TLSError.drainErrorQueue(fallback: "BIO_new failed"))
        }
        // An empty input BIO means "retry later" (WANT_READ), never end of file.
        _ = copenssl_BIO_set_mem_eof_return(input, -1)
        SSL_set_bio(ssl, input, output)  // ssl owns both from here
        self.tlsContext = context
        self.role = role
        self.handshakeTimeout = handshakeTimeout
        self.ssl = ssl
        self.networkInput = input
        self.networkOutput = output
        // The ALPN callback finds this handler through the SSL's app data (unretained: self owns ssl).
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_free(ssl)
    }

    /// The handler that owns `ssl` (for OpenSSL callbacks).
    static func from(ssl: OpaquePointer) -> TLSHandler? {
        guard let data = SSL_get_ex_data(ssl, 0) else { return nil }
        return Unmanaged<TLSHandler>.fromOpaque(data).takeUnretainedValue()
    }

    // MARK: - Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            startHandshake(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimeout()
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        startHandshake(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimeout()
        let previous = state
        state = .closed
        switch previous {
        case .idle, .handshaking:
            if previous == .handshaking {
                context.fireErrorCaught(TLSError.unexpectedEOF(duringHandshake: true))
            }
        case .active:
            // A partial record left over means the peer vanished mid-record. A peer that closes at a
            // record boundary without close_notify is common (HTTP/2 frames are self-delimiting) and
            // is not reported.
            if !receivedCloseNotify, SSL_has_pending(ssl) == 1 || BIO_ctrl_pending(networkInput) > 0 {
                context.fireErrorCaught(TLSError.unexpectedEOF(duringHandshake: false))
            }
        case .closing, .closed:
            break
        }
        failPendingWrites(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    // MARK: - Handshake

    private func startHandshake(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(handshakeTimeout)) {
            guard self.state == .handshaking else { return }
            self.fail(context: context, error: .handshakeTimeout(self.handshakeTimeout))
        }
        doHandshake(context: context)
    }

    private func doHandshake(context: ChannelHandlerContext) {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            writeCiphertext(context: context, flush: true)
            handshakeCompleted(context: context)
            return
        }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            writeCiphertext(context: context, flush: true)
            context.read()  // more handshake bytes are needed even if autoRead is off
        default:
            fail(context: context, error: handshakeError())
        }
    }

    /// The typed error for a failed `SSL_do_handshake`: verification result first, then ALPN, then
    /// OpenSSL's error queue.
    private func handshakeError() -> TLSError {
        let verifyResult = SSL_get_verify_result(ssl)
        if verifyResult != Int(X509_V_OK) {
            ERR_clear_error()
            return .certificateVerifyFailed(reason: TLSError.verifyResultReason(verifyResult))
        }
        if rejectedApplicationProtocols {
            ERR_clear_error()
            return .alpnMismatch(offered: clientOfferedProtocols, negotiated: nil)
        }
        if role == .client, ERR_GET_REASON(ERR_peek_error()) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL {
            ERR_clear_error()
            return .alpnMismatch(offered: tlsContext.applicationProtocols, negotiated: nil)
        }
        return .handshakeFailed(reason: TLSError.drainErrorQueue(fallback: "handshake failed"))
    }

    private func handshakeCompleted(context: ChannelHandlerContext) {
        cancelTimeout()
        // Flushing the last flight can close the channel synchronously (a write error).
        guard state == .handshaking else { return }
        state = .active
        let event = TLSHandshakeCompleted(
            negotiatedProtocol: negotiatedProtocol(),
            offeredProtocols: role == .client ? tlsContext.applicationProtocols : clientOfferedProtocols,
            tlsVersion: String(cString: SSL_get_version(ssl)),
            cipher: SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) },
            peerCertificateSubject: peerCertificateSubject())
        context.fireUserInboundEventTriggered(event)
        // Application data that arrived with the last handshake flight.
        if state == .active { readPlaintext(context: context) }
        if state == .active, flushedCount > 0 { encryptFlushedWrites(context: context) }
    }

    private func negotiatedProtocol() -> String? {
        var data: UnsafePointer<UInt8>? = nil
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    private func peerCertificateSubject() -> String? {
        guard let certificate = SSL_get0_peer_certificate(ssl), let name = X509_get_subject_name(certificate),
            let bio = BIO_new(BIO_s_mem())
        else { return nil }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, copenssl_XN_FLAG_RFC2253()) >= 0 else { return nil }
        let count = BIO_ctrl_pending(bio)
        var bytes = [UInt8](repeating: 0, count: count)
        var read = 0
        _ = bytes.withUnsafeMutableBytes { BIO_read_ex(bio, $0.baseAddress, count, &read) }
        return String(decoding: bytes.prefix(read), as: UTF8.self)
    }

    private func cancelTimeout() {
        timeout?.cancel()
        timeout = nil
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch state {
        case .closing, .closed:
            return
        case .idle:
            startHandshake(context: context)
            guard state == .handshaking else { return }
        case .handshaking, .active:
            break
        }
        let fed = buffer.withUnsafeReadableBytes { bytes -> Bool in
            guard bytes.count > 0 else { return true }
            var written = 0
            return BIO_write_ex(networkInput, bytes.baseAddress, bytes.count, &written) == 1 && written == bytes.count
        }
        guard fed else {
            fail(context: context, error: .connectionFailed(reason: TLSError.drainErrorQueue(fallback: "out of memory")))
            return
        }
        switch state {
        case .handshaking:
            doHandshake(context: context)  // reads any application data that follows, once complete
        case .active:
            readPlaintext(context: context)
        case .idle, .closing, .closed:
            break
        }
    }

    /// Decrypts everything complete in the input BIO and passes it up as one buffer.
    private func readPlaintext(context: ChannelHandlerContext) {
        // Plaintext is never longer than the ciphertext it comes from.
        var plaintext = context.channel.allocator.buffer(capacity: max(BIO_ctrl_pending(networkInput), Self.recordSize))
        var failure: TLSError? = nil
        reading: while true {
            ERR_clear_error()
            var result: Int32 = 0
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.recordSize) { space in
                var read = 0
                result = SSL_read_ex(ssl, space.baseAddress, space.count, &read)
                return result == 1 ? read : 0
            }
            if result == 1 { continue }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                break reading
            case SSL_ERROR_ZERO_RETURN:
                receivedCloseNotify = true
                break reading
            default:
                failure = .connectionFailed(reason: TLSError.drainErrorQueue(fallback: "cannot read a TLS record"))
                break reading
            }
        }
        // Post-handshake messages (key updates, alerts) may have produced output.
        if failure == nil, BIO_ctrl_pending(networkOutput) > 0 {
            writeCiphertext(context: context, flush: true)
        }
        if plaintext.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(plaintext))
        }
        if let failure {
            fail(context: context, error: failure)
        } else if receivedCloseNotify, state == .active {
            // Answer close_notify with ours and close (RFC 8446 §6.1).
            sendCloseNotifyAndClose(context: context, mode: .all, promise: nil)
        }
    }

    // MARK: - Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        case .idle, .handshaking, .active:
            if outputClosed {
                promise?.fail(ChannelError.outputClosed)
                return
            }
            pendingWrites.append(PendingWrite(buffer: unwrapOutboundIn(data), promise: promise))
        }
    }

    func flush(context: ChannelHandlerContext) {
        flushedCount = pendingWrites.count
        if state == .active {
            encryptFlushedWrites(context: context)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (state, mode) {
        case (.active, .all), (.active, .output):
            if outputClosed {
                context.close(mode: mode, promise: promise)
                return
            }
            flushedCount = pendingWrites.count  // what was written before close goes out first
            encryptFlushedWrites(context: context)
            if state == .active {
                sendCloseNotifyAndClose(context: context, mode: mode, promise: promise)
            } else {
                context.close(mode: mode, promise: promise)
            }
        case (.idle, .all), (.handshaking, .all):
            cancelTimeout()
            state = .closing
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: mode, promise: promise)
        default:
            context.close(mode: mode, promise: promise)
        }
    }

    /// Encrypts the flushed writes (coalescing small ones), writes the ciphertext and flushes.
    private func encryptFlushedWrites(context: ChannelHandlerContext) {
        guard flushedCount > 0 else { return }
        var batch: [PendingWrite] = []
        batch.reserveCapacity(flushedCount)
        while flushedCount > 0 {
            batch.append(pendingWrites.removeFirst())
            flushedCount -= 1
        }
        var staging = context.channel.allocator.buffer(capacity: 0)
        var failure: TLSError? = nil
        for write in batch where failure == nil {
            let count = write.buffer.readableBytes
            if count < Self.recordSize {
                if staging.capacity == 0 { staging.reserveCapacity(Self.recordSize) }
                staging.writeImmutableBuffer(write.buffer)
                if staging.readableBytes >= Self.recordSize {
                    failure = encrypt(staging, context: context)
                    staging.clear()
                }
            } else {
                if staging.readableBytes > 0 {
                    failure = encrypt(staging, context: context)
                    staging.clear()
                }
                if failure == nil { failure = encrypt(write.buffer, context: context) }
            }
        }
        if failure == nil, staging.readableBytes > 0 {
            failure = encrypt(staging, context: context)
        }
        if let failure {
            for write in batch { write.promise?.fail(failure) }
            fail(context: context, error: failure)
            return
        }
        // One promise for the batch, completed when its last ciphertext is written.
        var promises = batch.compactMap(\.promise)
        var combined: EventLoopPromise<Void>? = nil
        if promises.count == 1 {
            combined = promises.removeFirst()
        } else if !promises.isEmpty {
            let promise = context.eventLoop.makePromise(of: Void.self)
            for each in promises { promise.futureResult.cascade(to: each) }
            combined = promise
        }
        writeCiphertext(context: context, flush: true, promise: combined, always: true)
    }

    /// `SSL_write_ex` of all of `buffer` (OpenSSL splits it into records), moving ciphertext to the
    /// channel (unflushed) every ``writeSlice`` bytes.
    private func encrypt(_ buffer: ByteBuffer, context: ChannelHandlerContext) -> TLSError? {
        buffer.withUnsafeReadableBytes { bytes -> TLSError? in
            var offset = 0
            while offset < bytes.count {
                let length = min(Self.writeSlice, bytes.count - offset)
                ERR_clear_error()
                var written = 0
                let result = SSL_write_ex(ssl, bytes.baseAddress! + offset, length, &written)
                guard result == 1 else {
                    _ = SSL_get_error(ssl, result)
                    return .connectionFailed(reason: TLSError.drainErrorQueue(fallback: "cannot write a TLS record"))
                }
                offset += written
                if offset < bytes.count || BIO_ctrl_pending(networkOutput) >= Self.writeSlice {
                    writeCiphertext(context: context, flush: false)
                }
            }
            return nil
        }
    }

    /// Moves everything OpenSSL wrote into the output BIO to the channel.
    ///
    /// - Parameter always: Write (an empty buffer if need be) so that `promise` is completed in order.
    private func writeCiphertext(
        context: ChannelHandlerContext, flush: Bool, promise: EventLoopPromise<Void>? = nil, always: Bool = false
    ) {
        let pending = BIO_ctrl_pending(networkOutput)
        if pending > 0 || always || promise != nil {
            var ciphertext = context.channel.allocator.buffer(capacity: pending)
            if pending > 0 {
                ciphertext.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { space in
                    var read = 0
                    guard BIO_read_ex(networkOutput, space.baseAddress, pending, &read) == 1 else { return 0 }
                    return read
                }
            }
            context.write(wrapOutboundOut(ciphertext), promise: promise)
        }
        if flush {
            context.flush()
        }
    }

    /// Sends close_notify (after any pending ciphertext) and closes the channel (or its output).
    private func sendCloseNotifyAndClose(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all {
            state = .closing
            failPendingWrites(ChannelError.ioOnClosedChannel)
        } else {
            outputClosed = true
        }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)  // 0: close_notify queued, the peer's not yet seen; we do not wait for it
        ERR_clear_error()
        writeCiphertext(context: context, flush: true)
        context.close(mode: mode, promise: promise)
    }

    // MARK: - Failure

    /// Writes any alert OpenSSL queued (and close_notify if asked), fires `error`, and closes.
    private func fail(context: ChannelHandlerContext, error: TLSError, sendCloseNotify: Bool = false) {
        switch state {
        case .closing, .closed:
            return
        case .idle, .handshaking, .active:
            break
        }
        state = .closing
        cancelTimeout()
        if sendCloseNotify {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            ERR_clear_error()
        }
        writeCiphertext(context: context, flush: true)
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPendingWrites(_ error: any Error) {
        flushedCount = 0
        while let write = pendingWrites.popFirst() {
            write.promise?.fail(error)
        }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
