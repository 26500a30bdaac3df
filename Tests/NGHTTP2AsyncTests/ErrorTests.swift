import NGHTTP2
import Testing
@testable import NGHTTP2Async

/// `HTTP2Error` and `TLSError`: codes, context, retry safety, descriptions and matching.
@Suite struct HTTP2ErrorTests {
    @Test("an unprocessed stream is safe to retry")
    func unprocessedIsRetrySafe() {
        let error = HTTP2Error.notProcessed(streamID: 7)
        #expect(error.isRetrySafe)
        #expect(error.code == .notProcessed)
        #expect(error.streamID == 7)
    }

    @Test("a refused stream is safe to retry, a cancelled one is not")
    func refusedIsRetrySafeCancelledIsNot() {
        #expect(HTTP2Error.streamReset(streamID: 1, errorCode: .refusedStream, byPeer: true).isRetrySafe)
        #expect(!HTTP2Error.streamReset(streamID: 1, errorCode: .cancel, byPeer: true).isRetrySafe)
    }

    @Test("closed connections, timeouts and misuse are not safe to retry")
    func otherCodesAreNotRetrySafe() {
        let errors: [HTTP2Error] = [
            .connectionClosed(errorCode: .refusedStream), .connectionClosed(errorCode: nil), .connectTimeout,
            .sessionClosed, .keepAliveTimeout(.seconds(1)), .idleTimeout(.seconds(1)), .readerBusy,
            .invalidArgument("x"), .protocolViolation(.badClientMagic), .bodyTooLarge(limit: 1),
        ]
        for error in errors { #expect(!error.isRetrySafe, "\(error)") }
    }

    @Test("a reset carries its stream, HTTP/2 code and side")
    func resetCarriesContext() {
        let error = HTTP2Error.streamReset(streamID: 3, errorCode: .internalError, byPeer: true)
        #expect(error.code == .streamReset)
        #expect(error.streamID == 3)
        #expect(error.errorCode == .internalError)
        #expect(error.byPeer)
        #expect(error.underlying == nil && error.limit == nil && error.detail == nil && error.timeout == nil)
    }

    @Test("each constructor fills the context its code documents")
    func constructorsFillContext() {
        #expect(HTTP2Error.connectionClosed(errorCode: .enhanceYourCalm).errorCode == .enhanceYourCalm)
        #expect(HTTP2Error.connectionClosed(errorCode: nil, detail: "drained").detail == "drained")
        #expect(HTTP2Error.protocolViolation(.badClientMagic).underlying == .badClientMagic)
        #expect(HTTP2Error.bodyTooLarge(limit: 10).limit == 10)
        #expect(HTTP2Error.invalidURL("ftp://x").detail == "ftp://x")
        #expect(HTTP2Error.malformedMessage("no :status").detail == "no :status")
        #expect(HTTP2Error.keepAliveTimeout(.seconds(5)).timeout == .seconds(5))
        #expect(HTTP2Error.idleTimeout(.seconds(9)).timeout == .seconds(9))
        #expect(HTTP2Error.invalidArgument("read(upTo: 0)").detail == "read(upTo: 0)")
        #expect(HTTP2Error.readerBusy.code == .readerBusy)
        #expect(!HTTP2Error.connectionClosed(errorCode: .noError).byPeer)
    }

    @Test("descriptions say what happened, with the context")
    func descriptions() {
        let cases: [(HTTP2Error, String)] = [
            (.notProcessed(streamID: 5), "stream 5 was not processed by the peer (safe to retry)"),
            (.streamReset(streamID: 3, errorCode: .cancel, byPeer: true), "stream 3 was reset by the peer with CANCEL"),
            (.streamReset(streamID: 3, errorCode: .cancel, byPeer: false), "stream 3 was reset locally with CANCEL"),
            (.connectionClosed(errorCode: nil), "the connection closed"),
            (.connectionClosed(errorCode: .noError), "the connection closed (GOAWAY NO_ERROR)"),
            (.connectionClosed(errorCode: .noError, detail: "bye"), "the connection closed (GOAWAY NO_ERROR): bye"),
            (.protocolViolation(.badClientMagic), "HTTP/2 protocol violation: \(NGHTTP2Error.badClientMagic)"),
            (.bodyTooLarge(limit: 10), "the body is larger than 10 bytes"),
            (.invalidURL("ftp://x"), "invalid URL: ftp://x"),
            (.malformedMessage("no :status"), "malformed HTTP message: no :status"),
            (.connectTimeout, "connect timed out"),
            (.sessionClosed, "the session is closed"),
            (.keepAliveTimeout(.seconds(5)), "the peer did not acknowledge a PING within 5.0 seconds"),
            (.idleTimeout(.seconds(9)), "the connection was closed after being idle for 9.0 seconds"),
            (.readerBusy, "another task is already reading this stream"),
            (.invalidArgument("read(upTo: 0)"), "invalid argument: read(upTo: 0)"),
        ]
        for (error, text) in cases { #expect(error.description == text) }
        #expect(HTTP2Error.Code.keepAliveTimeout.description == "keepAliveTimeout")
    }

    @Test("errors are equal by code and context")
    func equality() {
        #expect(HTTP2Error.notProcessed(streamID: 1) == .notProcessed(streamID: 1))
        #expect(HTTP2Error.notProcessed(streamID: 1) != .notProcessed(streamID: 3))
        #expect(HTTP2Error.idleTimeout(.seconds(1)) != .keepAliveTimeout(.seconds(1)))
        #expect(HTTP2Error.connectionClosed(errorCode: nil) == .connectionClosed(errorCode: nil, detail: nil))
        #expect(HTTP2Error.connectionClosed(errorCode: nil) != .connectionClosed(errorCode: nil, detail: "bye"))
        #expect(
            HTTP2Error.streamReset(streamID: 1, errorCode: .cancel, byPeer: true)
                != .streamReset(streamID: 1, errorCode: .cancel, byPeer: false))
        #expect(Set([HTTP2Error.readerBusy, .readerBusy, .sessionClosed]).count == 2)
    }

    @Test("a code is a catch pattern, and a where clause reads the context")
    func matching() {
        func kind(_ error: any Error) -> String {
            do { throw error } catch HTTP2Error.Code.notProcessed {
                return "retry"
            } catch let error as HTTP2Error where error.code == .streamReset && error.byPeer {
                return "reset by peer"
            } catch TLSError.Code.certificateVerifyFailed {
                return "certificate"
            } catch {
                return "other"
            }
        }
        #expect(kind(HTTP2Error.notProcessed(streamID: 1)) == "retry")
        #expect(kind(HTTP2Error.streamReset(streamID: 1, errorCode: .cancel, byPeer: true)) == "reset by peer")
        #expect(kind(HTTP2Error.streamReset(streamID: 1, errorCode: .cancel, byPeer: false)) == "other")
        #expect(kind(TLSError.certificateVerifyFailed(reason: "hostname mismatch")) == "certificate")
        #expect(kind(TLSError.handshakeFailed(reason: "x")) == "other")
        #expect(kind(CancellationError()) == "other")
    }
}

@Suite struct TLSErrorTests {
    @Test("each constructor fills the context its code documents")
    func constructorsFillContext() {
        let mismatch = TLSError.alpnMismatch(offered: ["h2"], negotiated: "http/1.1")
        #expect(mismatch.code == .alpnMismatch)
        #expect(mismatch.offered == ["h2"] && mismatch.negotiated == "http/1.1" && mismatch.reason == nil)
        #expect(TLSError.handshakeTimeout(.seconds(2)).timeout == .seconds(2))
        #expect(TLSError.unexpectedEOF(duringHandshake: false).duringHandshake == false)
        #expect(TLSError.handshakeFailed(reason: "x").duringHandshake == nil)
        let key = TLSError.invalidPrivateKey(source: "/k.pem", reason: "key values mismatch")
        #expect(key.code == .invalidPrivateKey && key.source == "/k.pem" && key.reason == "key values mismatch")
        #expect(TLSError.invalidTrustRoots(source: "system", reason: "r").code == .invalidTrustRoots)
        #expect(TLSError.invalidCertificate(source: "PEM bytes", reason: "r").source == "PEM bytes")
        #expect(TLSError.connectionFailed(reason: "bad record mac").reason == "bad record mac")
        #expect(TLSError.invalidConfiguration(reason: "no cipher match").code == .invalidConfiguration)
        #expect(TLSError.certificateVerifyFailed(reason: "r").code == .certificateVerifyFailed)
    }

    @Test("descriptions include OpenSSL's reason")
    func descriptions() {
        let cases: [(TLSError, String)] = [
            (.handshakeFailed(reason: "no shared cipher"), "TLS handshake failed: no shared cipher"),
            (.certificateVerifyFailed(reason: "hostname mismatch"), "certificate verify failed: hostname mismatch"),
            (.alpnMismatch(offered: [], negotiated: nil), "TLS ALPN mismatch: offered none; negotiated none"),
            (.alpnMismatch(offered: ["h2", "http/1.1"], negotiated: "x"), "TLS ALPN mismatch: offered h2, http/1.1; negotiated x"),
            (.handshakeTimeout(.seconds(2)), "TLS handshake timed out after 2.0 seconds"),
            (.unexpectedEOF(duringHandshake: true), "TLS peer closed the connection during the handshake"),
            (.unexpectedEOF(duringHandshake: false), "TLS peer closed the connection in the middle of a record"),
            (.connectionFailed(reason: "bad record mac"), "TLS connection failed: bad record mac"),
            (.invalidCertificate(source: "a.pem", reason: "r"), "invalid certificate (a.pem): r"),
            (.invalidPrivateKey(source: "k.pem", reason: "r"), "invalid private key (k.pem): r"),
            (.invalidTrustRoots(source: "ca", reason: "r"), "invalid trust roots (ca): r"),
            (.invalidConfiguration(reason: "no cipher match"), "invalid TLS configuration: no cipher match"),
        ]
        for (error, text) in cases { #expect(error.description == text) }
        #expect(TLSError.Code.unexpectedEOF.description == "unexpectedEOF")
    }

    @Test("errors are equal by code and context")
    func equality() {
        #expect(TLSError.handshakeFailed(reason: "x") == .handshakeFailed(reason: "x"))
        #expect(TLSError.handshakeFailed(reason: "x") != .connectionFailed(reason: "x"))
        #expect(TLSError.handshakeFailed(reason: "x") != .handshakeFailed(reason: "y"))
        #expect(TLSError.invalidCertificate(source: "a", reason: "r") != .invalidPrivateKey(source: "a", reason: "r"))
        #expect(TLSError.unexpectedEOF(duringHandshake: true) != .unexpectedEOF(duringHandshake: false))
    }
}
