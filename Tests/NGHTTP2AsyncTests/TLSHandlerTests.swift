import Foundation
import NGHTTP2
import NIOCore
import NIOPosix
import Testing

@testable import NGHTTP2Async

/// The TLS layer (OpenSSL through memory BIOs) on real sockets on 127.0.0.1: our client and server
/// against each other, against nghttpd and the openssl CLI, verification failures, mutual TLS, and
/// bad input.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct TLSHandlerTests {
    // MARK: - Our client ↔ our server

    /// TLS 1.3 + ALPN h2 by default; 64 MiB echoed back byte for byte, written in pieces from 1 byte to
    /// 1 MiB (many records per read, records split across reads, 1-byte records, > 16 KiB writes).
    @Test func clientServerTLS13Echo64MiB() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await TLSTestServer.start(certificates.serverConfiguration())
        defer { server.stop() }
        let client = try await TLSTestClient.connect(port: server.port, configuration: certificates.clientConfiguration())
        defer { client.close() }

        let handshake = try await client.observations.handshake()
        #expect(handshake.tlsVersion == "TLSv1.3")
        #expect(handshake.negotiatedProtocol == "h2")
        #expect(handshake.cipher?.hasPrefix("TLS_") == true)
        #expect(handshake.peerCertificateSubject == "CN=localhost")

        let total = 64 << 20
        let data = payload(total, seed: 7)
        var sizes = [Int](repeating: 1, count: 1000)  // 1000 one-byte records first
        sizes += [2, 100, 1000, 16_383, 16_384, 16_385, 40_000, 65_536, 100_001, 1 << 20]
        var offset = 0
        var index = 0
        while offset < total {
            var batch: [ByteBuffer] = []
            var batchBytes = 0
            while offset < total, batchBytes < 4 << 20 {
                let size = min(sizes[index < 1000 ? index : 1000 + (index - 1000) % (sizes.count - 1000)], total - offset)
                batch.append(ByteBuffer(bytes: data[offset..<(offset + size)]))
                offset += size
                batchBytes += size
                index += 1
            }
            let channel = client.channel
            let toSend = batch
            try await channel.eventLoop.submit {
                for (position, buffer) in toSend.enumerated() {
                    channel.write(buffer, promise: nil)
                    if position % 3 == 0 { channel.flush() }  // some writes coalesced, some alone
                }
                channel.flush()
            }.get()
            let sent = offset
            try await until("the echo to catch up") { client.observations.receivedCount >= sent - (8 << 20) }
        }
        try await until("all 64 MiB echoed", timeout: .seconds(120)) { client.observations.receivedCount >= total }
        let received = client.observations.receivedBytes
        #expect(received.count == total)
        #expect(received == data, "the echoed bytes differ")
        #expect(client.observations.errors.isEmpty)
        #expect(!client.observations.readBeforeHandshake)
        #expect(server.connections.allSatisfy { !$0.readBeforeHandshake && $0.errors.isEmpty })
    }

    /// Writes made before the handshake completes are buffered and arrive first, in order; the
    /// handshake event precedes them at the server.
    @Test func writesBeforeHandshakeAreSentAfterIt() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await TLSTestServer.start(certificates.serverConfiguration())
        defer { server.stop() }
        let client = try await TLSTestClient.connect(
            port: server.port, configuration: certificates.clientConfiguration(),
            writeOnActive: [Array("hello, ".utf8), Array("tls".utf8)])
        defer { client.close() }
        try await until("the echo") { client.observations.receivedCount >= 10 }
        #expect(String(decoding: client.observations.receivedBytes, as: UTF8.self) == "hello, tls")
        #expect(!server.connections.contains { $0.readBeforeHandshake })
    }

    /// TLS 1.2 between our own client and server: ECDHE + AEAD, ALPN h2.
    @Test func clientServerTLS12() async throws {
        let certificates = try await TestCertificates.shared()
        var serverConfiguration = certificates.serverConfiguration()
        serverConfiguration.maximumTLSVersion = .tlsv12
        let server = try await TLSTestServer.start(serverConfiguration)
        defer { server.stop() }
        let client = try await TLSTestClient.connect(port: server.port, configuration: certificates.clientConfiguration())
        defer { client.close() }
        let handshake = try await client.observations.handshake()
        #expect(handshake.tlsVersion == "TLSv1.2")
        #expect(handshake.negotiatedProtocol == "h2")
        let cipher = handshake.cipher ?? ""
        #expect(cipher.hasPrefix("ECDHE-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")), "\(cipher)")
        try await client.echoRoundTrip(Array("over TLS 1.2".utf8))
    }

    /// The server picks its certificate by SNI from `certificatesByServerName`.
    @Test func serverChoosesCertificateBySNI() async throws {
        let certificates = try await TestCertificates.shared()
        var serverConfiguration = NGHTTP2TLSConfiguration.makeServerConfiguration(
            certificateChain: .file(certificates.wrongHostCertificate), privateKey: .file(certificates.wrongHostKey))
        serverConfiguration.certificatesByServerName = [
            "LOCALHOST": .init(certificateChain: .file(certificates.leafCertificate), privateKey: .file(certificates.leafKey))
        ]
        let server = try await TLSTestServer.start(serverConfiguration)
        defer { server.stop() }

        let local = try await TLSTestClient.connect(
            port: server.port, configuration: certificates.clientConfiguration(), serverHostname: "localhost")
        defer { local.close() }
        #expect(try await local.observations.handshake().peerCertificateSubject == "CN=localhost")

        var other = certificates.clientConfiguration()
        other.serverName = "example.org"
        let example = try await TLSTestClient.connect(port: server.port, configuration: other, serverHostname: "localhost")
        defer { example.close() }
        #expect(try await example.observations.handshake().peerCertificateSubject == "CN=example.org")
    }

    // MARK: - Against real peers

    /// Our client against nghttpd over TLS: ALPN h2, and an HTTP/2 client preface + SETTINGS written
    /// through the handler gets the server's SETTINGS (and the ACK of ours) back.
    @Test func clientAgainstNghttpdTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try await Peers.freePort()
        let nghttpd = try await Peers.start(
            "nghttpd", ["-a", "127.0.0.1", "-d", directory, "\(port)", certificates.leafKey, certificates.leafCertificate],
            waitForPort: port)
        defer { nghttpd.stop() }

        let client = try await TLSTestClient.connect(
            port: port, configuration: certificates.clientConfiguration(), serverHostname: "127.0.0.1")
        defer { client.close() }
        let handshake = try await client.observations.handshake()
        #expect(handshake.negotiatedProtocol == "h2")
        #expect(handshake.tlsVersion == "TLSv1.3")

        let session = try Session(role: .client)
        try session.submitSettings([])
        let preface = try session.send()
        #expect(preface.count == 24 + 9)
        try await wait(client.channel.writeAndFlush(ByteBuffer(bytes: preface)), "the preface write")
        try await until("SETTINGS and SETTINGS ACK from nghttpd") {
            let frames = http2Frames(client.observations.receivedBytes)
            return frames.contains { $0.type == 4 && $0.flags & 1 == 0 } && frames.contains { $0.type == 4 && $0.flags & 1 == 1 }
        }
        let first = http2Frames(client.observations.receivedBytes).first
        #expect(first?.type == 4 && first?.streamID == 0, "the server's first frame is SETTINGS")

        // nghttpd killed: the TCP connection ends at a record boundary without close_notify, which is
        // not an error (HTTP/2 frames are self-delimiting).
        nghttpd.stop()
        try await client.observations.waitUntilClosed()
        #expect(client.observations.errors.isEmpty, "\(client.observations.errors)")
    }

    /// Our server under `openssl s_client -alpn h2`: handshake ok, "ALPN protocol: h2". Without ALPN,
    /// or offering only http/1.1, the server refuses with the typed ALPN error and keeps serving.
    @Test func serverUnderOpensslSClient() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await TLSTestServer.start(certificates.serverConfiguration())
        defer { server.stop() }
        let base = [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", certificates.caCertificate,
            "-servername", "localhost", "-verify_return_error",
        ]

        let good = try await Peers.run("openssl", base + ["-alpn", "h2"], stdin: Data())
        #expect(good.text.contains("ALPN protocol: h2"), "\(good.text)\n\(good.stderr)")
        #expect(good.text.contains("Verify return code: 0 (ok)"))
        try await until("the server to see the handshake") { server.connections.contains { $0.handshakeEvent != nil } }

        let noALPN = try await Peers.run("openssl", base, stdin: Data())
        #expect(noALPN.text.contains("No ALPN negotiated"), "\(noALPN.text)")
        try await until("the server's ALPN error") {
            server.allErrors.contains(.alpnMismatch(offered: [], negotiated: nil))
        }

        let http1 = try await Peers.run("openssl", base + ["-alpn", "http/1.1"], stdin: Data())
        #expect(http1.status != 0)
        #expect((http1.text + http1.stderr).contains("no application protocol"), "\(http1.stderr)")
        try await until("the server's ALPN error for http/1.1") {
            server.allErrors.contains(.alpnMismatch(offered: ["http/1.1"], negotiated: nil))
        }

        // Still serving.
        let again = try await Peers.run("openssl", base + ["-alpn", "h2"], stdin: Data())
        #expect(again.text.contains("ALPN protocol: h2"))
        // Our client offering only http/1.1 gets the typed error from the server's alert.
        var http1Client = certificates.clientConfiguration()
        http1Client.applicationProtocols = ["http/1.1"]
        let client = try await TLSTestClient.connect(port: server.port, configuration: http1Client, requireH2: false)
        defer { client.close() }
        #expect(try await client.observations.failure() == .alpnMismatch(offered: ["http/1.1"], negotiated: nil))
        try await client.observations.waitUntilClosed()
    }

    /// A TLS 1.2-only peer (`openssl s_server -tls1_2`) works with an ECDHE + AEAD cipher, and data
    /// flows; a TLS 1.1-only client is refused by our server ("unsupported protocol").
    @Test func tls12PeerAndTLS11Refused() async throws {
        let certificates = try await TestCertificates.shared()
        let port = try await Peers.freePort()
        let sServer = try await Peers.start(
            "openssl", [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.leafCertificate, "-key",
                certificates.leafKey, "-tls1_2", "-alpn", "h2", "-www",
            ], waitForPort: port)
        defer { sServer.stop() }
        let client = try await TLSTestClient.connect(port: port, configuration: certificates.clientConfiguration())
        defer { client.close() }
        let handshake = try await client.observations.handshake()
        #expect(handshake.tlsVersion == "TLSv1.2")
        #expect(handshake.negotiatedProtocol == "h2")
        let cipher = handshake.cipher ?? ""
        #expect(cipher.hasPrefix("ECDHE-ECDSA-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")), "\(cipher)")
        try await wait(client.channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n")), "the GET write")
        try await until("s_server's HTTP/1.0 answer") {
            String(decoding: client.observations.receivedBytes, as: UTF8.self).hasPrefix("HTTP/1.0 200 ok")
        }
        try await client.observations.waitUntilClosed()  // s_server -www closes after answering
        #expect(client.observations.errors.isEmpty, "close_notify ends the connection cleanly")

        let server = try await TLSTestServer.start(certificates.serverConfiguration())
        defer { server.stop() }
        let old = try await Peers.run(
            "openssl", [
                "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
                "-alpn", "h2",
            ], stdin: Data())
        #expect(old.status != 0)
        try await until("the server's refusal") { !server.allErrors.isEmpty }
        #expect(server.allErrors.contains(.handshakeFailed(reason: "unsupported protocol")), "\(server.allErrors)")
        #expect(!server.connections.contains { $0.handshakeEvent != nil })
    }

    // MARK: - Verification

    /// Wrong host name, untrusted CA (system roots), expired certificate: each fails with the typed
    /// error and OpenSSL's reason, the channel closes, and the server sees the handshake fail.
    @Test func verificationFailures() async throws {
        let certificates = try await TestCertificates.shared()
        let cases: [(name: String, server: NGHTTP2TLSConfiguration, client: NGHTTP2TLSConfiguration, reason: String)] = [
            (
                "wrong host",
                .makeServerConfiguration(
                    certificateChain: .file(certificates.wrongHostCertificate), privateKey: .file(certificates.wrongHostKey)),
                certificates.clientConfiguration(), "hostname mismatch"
            ),
            ("untrusted CA", certificates.serverConfiguration(), .makeClientConfiguration(), "unable to get local issuer certificate"),
            (
                "expired",
                .makeServerConfiguration(
                    certificateChain: .file(certificates.expiredCertificate), privateKey: .file(certificates.expiredKey)),
                certificates.clientConfiguration(), "certificate has expired"
            ),
        ]
        for (name, serverConfiguration, clientConfiguration, reason) in cases {
            let server = try await TLSTestServer.start(serverConfiguration)
            defer { server.stop() }
            let client = try await TLSTestClient.connect(port: server.port, configuration: clientConfiguration)
            defer { client.close() }
            let failure = try await client.observations.failure()
            #expect(failure == .certificateVerifyFailed(reason: reason), "\(name): \(failure)")
            #expect(failure.description == "certificate verify failed: \(reason)")
            try await client.observations.waitUntilClosed()
            try await until("\(name): the server's handshake error") {
                server.allErrors.contains { $0.code == .handshakeFailed }
            }
        }
    }

    /// `.insecureNoVerification` connects to the wrong-host server; `.noHostnameVerification` does too
    /// when the CA is trusted, but still refuses an untrusted CA.
    @Test func relaxedVerification() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await TLSTestServer.start(
            .makeServerConfiguration(
                certificateChain: .file(certificates.wrongHostCertificate), privateKey: .file(certificates.wrongHostKey)))
        defer { server.stop() }

        var insecure = NGHTTP2TLSConfiguration.makeClientConfiguration()
        insecure.certificateVerification = .insecureNoVerification
        let first = try await TLSTestClient.connect(port: server.port, configuration: insecure)
        defer { first.close() }
        #expect(try await first.observations.handshake().peerCertificateSubject == "CN=example.org")
        try await first.echoRoundTrip(Array("insecure but working".utf8))

        var noHostname = certificates.clientConfiguration()
        noHostname.certificateVerification = .noHostnameVerification
        let second = try await TLSTestClient.connect(port: server.port, configuration: noHostname)
        defer { second.close() }
        #expect(try await second.observations.handshake().negotiatedProtocol == "h2")

        var untrusted = NGHTTP2TLSConfiguration.makeClientConfiguration()
        untrusted.certificateVerification = .noHostnameVerification
        let third = try await TLSTestClient.connect(port: server.port, configuration: untrusted)
        defer { third.close() }
        #expect(try await third.observations.failure() == .certificateVerifyFailed(reason: "unable to get local issuer certificate"))
    }

    // MARK: - Mutual TLS

    /// A server requiring a client certificate accepts ours (and sees its subject) and refuses a client
    /// without one: "peer did not return a certificate" at the server; the TLS 1.3 client, whose
    /// handshake is already complete, gets the server's "certificate required" alert as a connection error.
    @Test func mutualTLS() async throws {
        let certificates = try await TestCertificates.shared()
        var serverConfiguration = certificates.serverConfiguration()
        serverConfiguration.clientCertificateVerification = .required
        serverConfiguration.trustRoots = .file(certificates.caCertificate)
        let server = try await TLSTestServer.start(serverConfiguration)
        defer { server.stop() }

        var withCertificate = certificates.clientConfiguration()
        withCertificate.certificateChain = .file(certificates.clientCertificate)
        withCertificate.privateKey = .file(certificates.clientKey)
        let good = try await TLSTestClient.connect(port: server.port, configuration: withCertificate)
        defer { good.close() }
        #expect(try await good.observations.handshake().peerCertificateSubject == "CN=localhost")
        try await good.echoRoundTrip(Array("mutual".utf8))
        #expect(server.connections.first?.handshakeEvent?.peerCertificateSubject == "CN=test-client")

        let bad = try await TLSTestClient.connect(port: server.port, configuration: certificates.clientConfiguration())
        defer { bad.close() }
        try await bad.observations.waitUntilClosed()
        #expect(bad.observations.errors == [.connectionFailed(reason: "tlsv13 alert certificate required (SSL alert number 116)")])
        try await until("the server's refusal") {
            server.allErrors.contains(.handshakeFailed(reason: "peer did not return a certificate"))
        }

        // TLS 1.2: the client learns during the handshake.
        var tls12 = certificates.clientConfiguration()
        tls12.maximumTLSVersion = .tlsv12
        let bad12 = try await TLSTestClient.connect(port: server.port, configuration: tls12)
        defer { bad12.close() }
        let failure = try await bad12.observations.failure()
        #expect(failure == .handshakeFailed(reason: "sslv3 alert handshake failure (SSL alert number 40)"), "\(failure)")
    }

    // MARK: - Bad input and misbehaving peers

    /// A plaintext HTTP/2 preface or random bytes: handshake error, connection closed, server still
    /// serving. A silent client is closed by the handshake timeout. A client that disconnects
    /// mid-handshake or mid-record causes an unexpected-EOF error, no crash, and every handler is freed.
    @Test func badInputAndMisbehavingClients() async throws {
        let certificates = try await TestCertificates.shared()
        let timeout = Duration.milliseconds(300)
        let server = try await TLSTestServer.start(certificates.serverConfiguration(), handshakeTimeout: timeout)
        defer { server.stop() }

        // Plaintext HTTP/2 preface.
        let preface = try await TLSTestClient.connectRaw(port: server.port)
        try await writeUnlessClosed(preface.channel, ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "the preface write")
        try await preface.observations.waitUntilClosed()
        try await until("the preface error") { server.allErrors.count == 1 }
        guard server.allErrors[0].code == .handshakeFailed, let prefaceReason = server.allErrors[0].reason else {
            Issue.record("expected handshakeFailed, got \(server.allErrors)")
            return
        }
        #expect(!prefaceReason.isEmpty)

        // Random bytes.
        let random = try await TLSTestClient.connectRaw(port: server.port)
        try await writeUnlessClosed(random.channel, ByteBuffer(bytes: payload(4096, seed: 99)), "the random write")
        try await random.observations.waitUntilClosed()
        try await until("the random-bytes error") { server.allErrors.count == 2 }
        #expect(server.allErrors[1].code == .handshakeFailed, "\(server.allErrors)")

        // Connects and sends nothing: closed by the handshake timeout.
        let start = ContinuousClock.now
        let silent = try await TLSTestClient.connectRaw(port: server.port)
        try await silent.observations.waitUntilClosed()
        #expect(ContinuousClock.now - start < .seconds(5))
        try await until("the timeout error") { server.allErrors.contains(.handshakeTimeout(timeout)) }

        // Half a ClientHello record, then gone.
        let partial = try await TLSTestClient.connectRaw(port: server.port)
        try await wait(partial.channel.writeAndFlush(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])), "the partial write")
        try await wait(partial.channel.close(), "close")
        try await until("the mid-handshake EOF") { server.allErrors.contains(.unexpectedEOF(duringHandshake: true)) }

        // Our client, gone right after its ClientHello.
        let quitter = try await TLSTestClient.connect(port: server.port, configuration: certificates.clientConfiguration())
        try await wait(quitter.channel.close(), "close")

        // A client that vanishes in the middle of a record after the handshake.
        let truncating = try await TLSTestClient.connect(
            port: server.port, configuration: certificates.clientConfiguration(), truncate: true)
        _ = try await truncating.observations.handshake()
        try await until("the server's handshake") { server.connections.filter { $0.handshakeEvent != nil }.count >= 1 }
        try await truncating.channel.eventLoop.submit {
            truncating.truncator?.armed = true
        }.get()
        truncating.channel.writeAndFlush(ByteBuffer(bytes: payload(1000, seed: 3)), promise: nil)
        try await truncating.observations.waitUntilClosed()
        try await until("the mid-record EOF") { server.allErrors.contains(.unexpectedEOF(duringHandshake: false)) }

        // Still serving.
        let good = try await TLSTestClient.connect(port: server.port, configuration: certificates.clientConfiguration())
        try await good.echoRoundTrip(Array("still here".utf8))
        try await wait(good.channel.close(), "close")

        // Nothing leaked: every server-side TLSHandler (and its SSL) is freed once its channel is gone.
        try await until("all server handlers freed") { server.connections.allSatisfy { $0.handlerIsFreed } }
        #expect(server.connections.count == 7)
    }

    /// Configuration errors carry OpenSSL's reason; PEM bytes work like files.
    @Test func configurationErrorsAndPEMBytes() async throws {
        let certificates = try await TestCertificates.shared()
        let missing = "/nonexistent/tls-test.pem"
        #expect(throws: TLSError.self) {
            _ = try TLSContext(configuration: .makeServerConfiguration(certificateChain: .file(missing), privateKey: .file(certificates.leafKey)))
        }
        do {
            _ = try TLSContext(
                configuration: .makeServerConfiguration(
                    certificateChain: .file(certificates.leafCertificate), privateKey: .file(certificates.wrongHostKey)))
            Issue.record("a mismatched key was accepted")
        } catch let error as TLSError {
            #expect(error == .invalidPrivateKey(source: certificates.wrongHostKey, reason: "key values mismatch"), "\(error)")
        }
        do {
            _ = try TLSContext(
                configuration: .makeServerConfiguration(certificateChain: .pem("not a certificate"), privateKey: .file(certificates.leafKey)))
            Issue.record("garbage PEM was accepted")
        } catch let error as TLSError {
            #expect(error == .invalidCertificate(source: "PEM bytes", reason: "no start line (Expecting: TRUSTED CERTIFICATE)"), "\(error)")
        }
        do {
            var configuration = NGHTTP2TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(missing)
            _ = try TLSContext(configuration: configuration)
            Issue.record("missing trust roots were accepted")
        } catch let error as TLSError {
            guard error.code == .invalidTrustRoots, let reason = error.reason else { throw error }
            #expect(error.source == missing)
            #expect(reason.contains("No such file or directory"), "\(reason)")
        }
        do {
            var configuration = NGHTTP2TLSConfiguration.makeClientConfiguration()
            configuration.applicationProtocols = [""]
            _ = try TLSContext(configuration: configuration)
            Issue.record("an empty ALPN name was accepted")
        } catch let error as TLSError {
            guard error.code == .invalidConfiguration else { throw error }
        }
        do {
            var configuration = NGHTTP2TLSConfiguration.makeClientConfiguration()
            configuration.cipherList = "NO-SUCH-CIPHER"
            _ = try TLSContext(configuration: configuration)
            Issue.record("a bad cipher list was accepted")
        } catch let error as TLSError {
            #expect(error == .invalidConfiguration(reason: "no cipher match"), "\(error)")
        }
        #expect(throws: TLSError.self) {
            _ = try TLSHandler(context: TLSContext(configuration: .makeClientConfiguration()), role: .client, serverHostname: nil)
        }
        #expect(throws: TLSError.invalidConfiguration(reason: "a server needs a certificate chain and private key")) {
            _ = try TLSHandler(context: TLSContext(configuration: NGHTTP2TLSConfiguration()), role: .server)
        }

        // A server and client built entirely from PEM bytes.
        func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
        let server = try await TLSTestServer.start(
            .makeServerConfiguration(
                certificateChain: .pemBytes(try bytes(certificates.leafCertificate)),
                privateKey: .pemBytes(try bytes(certificates.leafKey))))
        defer { server.stop() }
        var client = NGHTTP2TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .pemBytes(try bytes(certificates.caCertificate))
        let connection = try await TLSTestClient.connect(port: server.port, configuration: client)
        defer { connection.close() }
        #expect(try await connection.observations.handshake().negotiatedProtocol == "h2")
    }
}

// MARK: - Helpers

extension TestCertificates {
    /// The localhost leaf, ALPN h2.
    fileprivate func serverConfiguration() -> NGHTTP2TLSConfiguration {
        .makeServerConfiguration(certificateChain: .file(leafCertificate), privateKey: .file(leafKey))
    }

    /// Trusts the test CA only; full verification.
    fileprivate func clientConfiguration() -> NGHTTP2TLSConfiguration {
        var configuration = NGHTTP2TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caCertificate)
        return configuration
    }
}

private struct TLSTestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` until it holds or `timeout` passes.
private func until(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { throw TLSTestTimeout(what: what) }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// The result of `future`, polled (a hung future fails the test instead of hanging it).
/// Writes bad input the server is expected to close the connection on. On a loaded machine the server's 300 ms
/// handshake timeout can close it before the write: closed either way, which is what the caller checks next.
private func writeUnlessClosed(_ channel: any Channel, _ buffer: ByteBuffer, _ what: String) async throws {
    do {
        try await wait(channel.writeAndFlush(buffer), what)
    } catch let error as ChannelError where error == .alreadyClosed || error == .ioOnClosedChannel {
    }
}

private func wait<T: Sendable>(_ future: EventLoopFuture<T>, _ what: String, timeout: Duration = .seconds(20)) async throws -> T {
    let box = LockedState<Result<T, any Error>?>(nil)
    future.whenComplete { result in box.withLock { $0 = result } }
    try await until(what, timeout: timeout) { box.withLock { $0 != nil } }
    return try box.withLock { $0! }.get()
}

/// (type, flags, stream id) of each complete HTTP/2 frame in `bytes`.
private func http2Frames(_ bytes: [UInt8]) -> [(type: UInt8, flags: UInt8, streamID: UInt32)] {
    var frames: [(type: UInt8, flags: UInt8, streamID: UInt32)] = []
    var index = 0
    while index + 9 <= bytes.count {
        let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
        let streamID = (UInt32(bytes[index + 5]) << 24 | UInt32(bytes[index + 6]) << 16 | UInt32(bytes[index + 7]) << 8
            | UInt32(bytes[index + 8])) & 0x7FFF_FFFF
        guard index + 9 + length <= bytes.count else { break }
        frames.append((bytes[index + 3], bytes[index + 4], streamID))
        index += 9 + length
    }
    return frames
}

/// What one connection's pipeline saw, readable from tests.
private final class TLSTestObservations: Sendable {
    private struct State {
        var handshake: TLSHandshakeCompleted?
        var errors: [TLSError] = []
        var otherErrors: [String] = []
        var received: [UInt8] = []
        var readBeforeHandshake = false
        var closed = false
        var handler: TLSTestWeakHandler?
    }

    private let state = LockedState(State())
    /// Whether a TLS handler is expected above which plaintext must follow the handshake event.
    let expectsHandshake: Bool

    init(expectsHandshake: Bool) { self.expectsHandshake = expectsHandshake }

    var handshakeEvent: TLSHandshakeCompleted? { state.withLock { $0.handshake } }
    var errors: [TLSError] { state.withLock { $0.errors } }
    var receivedCount: Int { state.withLock { $0.received.count } }
    var receivedBytes: [UInt8] { state.withLock { $0.received } }
    var readBeforeHandshake: Bool { state.withLock { $0.readBeforeHandshake } }
    var isClosed: Bool { state.withLock { $0.closed } }
    var handlerIsFreed: Bool { state.withLock { $0.handler?.isFreed ?? true } }

    func track(_ handler: TLSHandler) {
        let reference = TLSTestWeakHandler(handler)
        state.withLock { $0.handler = reference }
    }
    func record(handshake: TLSHandshakeCompleted) { state.withLock { $0.handshake = handshake } }
    func record(error: any Error) {
        state.withLock {
            if let error = error as? TLSError { $0.errors.append(error) } else { $0.otherErrors.append("\(error)") }
        }
    }
    func record(read buffer: ByteBuffer) {
        state.withLock { state in
            if expectsHandshake, state.handshake == nil { state.readBeforeHandshake = true }
            buffer.withUnsafeReadableBytes { state.received.append(contentsOf: $0) }
        }
    }
    func recordClosed() { state.withLock { $0.closed = true } }

    /// The handshake event, or the error that came instead.
    func handshake() async throws -> TLSHandshakeCompleted {
        try await until("the handshake") { handshakeEvent != nil || !errors.isEmpty || isClosed }
        if let event = handshakeEvent { return event }
        throw errors.first ?? TLSError.unexpectedEOF(duringHandshake: true)
    }

    /// The first TLS error (which must come).
    func failure() async throws -> TLSError {
        try await until("a TLS error") { !errors.isEmpty }
        return errors[0]
    }

    func waitUntilClosed() async throws {
        try await until("the channel to close") { isClosed }
    }
}

/// Records events, errors and bytes; echoes them back on a server.
private final class TLSTestRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let observations: TLSTestObservations
    let echo: Bool
    let writeOnActive: [[UInt8]]

    init(_ observations: TLSTestObservations, echo: Bool, writeOnActive: [[UInt8]] = []) {
        self.observations = observations
        self.echo = echo
        self.writeOnActive = writeOnActive
    }

    func channelActive(context: ChannelHandlerContext) {
        for bytes in writeOnActive {
            context.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
        }
        if !writeOnActive.isEmpty { context.flush() }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompleted { observations.record(handshake: event) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        observations.record(read: buffer)
        if echo { context.write(wrapOutboundOut(buffer), promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if echo { context.flush() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        observations.record(error: error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        observations.recordClosed()
        context.fireChannelInactive()
    }
}

/// Below the client's TLS handler: once armed, forwards only half of the next write and closes the
/// connection (a peer that vanishes mid-record).
private final class TLSTestTruncator: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var armed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard armed else {
            context.write(data, promise: promise)
            return
        }
        armed = false
        var buffer = unwrapOutboundIn(data)
        let half = buffer.readSlice(length: buffer.readableBytes / 2)!
        context.writeAndFlush(wrapOutboundOut(half), promise: promise)
        context.close(promise: nil)
    }
}

/// The observations of every connection a test server accepted.
private final class TLSTestConnectionLog: Sendable {
    private let entries = LockedState<[TLSTestObservations]>([])
    var all: [TLSTestObservations] { entries.withLock { $0 } }
    func append(_ observations: TLSTestObservations) { entries.withLock { $0.append(observations) } }
}

/// A TLS echo server on 127.0.0.1 (our TLSHandler, server role).
private final class TLSTestServer: Sendable {
    let channel: any Channel
    let port: Int
    private let log: TLSTestConnectionLog

    private init(channel: any Channel, log: TLSTestConnectionLog) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.log = log
    }

    var connections: [TLSTestObservations] { log.all }
    var allErrors: [TLSError] { connections.flatMap(\.errors) }

    static func start(
        _ configuration: NGHTTP2TLSConfiguration, requireH2: Bool = true, handshakeTimeout: Duration = .seconds(10)
    ) async throws -> TLSTestServer {
        let context = try TLSContext(configuration: configuration)
        let log = TLSTestConnectionLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let observations = TLSTestObservations(expectsHandshake: true)
                    log.append(observations)
                    let tls = try TLSHandler(context: context, role: .server, handshakeTimeout: handshakeTimeout)
                    observations.track(tls)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    if requireH2 { try channel.pipeline.syncOperations.addHandler(negotiation(on: channel)) }
                    try channel.pipeline.syncOperations.addHandler(TLSTestRecorder(observations, echo: true))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TLSTestServer(channel: channel, log: log)
    }

    func stop() {
        channel.close(promise: nil)
    }
}

/// The library's ALPN check (what ``ChannelSetup`` puts above the TLS handler), installing nothing: HTTP/2 or a typed
/// error that the recorder above sees.
private func negotiation(on channel: any Channel) -> ProtocolNegotiationHandler<ApplicationProtocol> {
    ProtocolNegotiationHandler(promise: channel.eventLoop.makePromise()) { negotiated, _ in negotiated }
}

/// A client connection on 127.0.0.1: our TLSHandler (client role) under a recorder, or a raw TCP
/// connection with only the recorder.
private final class TLSTestClient: Sendable {
    let channel: any Channel
    let observations: TLSTestObservations
    /// Set when connected with `truncate: true`; touch only on the channel's event loop.
    nonisolated(unsafe) let truncator: TLSTestTruncator?  // created before the connect and only used on the channel's event loop

    private init(channel: any Channel, observations: TLSTestObservations, truncator: TLSTestTruncator?) {
        self.channel = channel
        self.observations = observations
        self.truncator = truncator
    }

    static func connect(
        port: Int,
        configuration: NGHTTP2TLSConfiguration,
        serverHostname: String? = "localhost",
        requireH2: Bool = true,
        writeOnActive: [[UInt8]] = [],
        truncate: Bool = false
    ) async throws -> TLSTestClient {
        let context = try TLSContext(configuration: configuration)
        let observations = TLSTestObservations(expectsHandshake: true)
        let holder = LockedState<TLSTestTruncatorBox?>(nil)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if truncate {
                        let truncator = TLSTestTruncator()
                        holder.withLock { $0 = TLSTestTruncatorBox(truncator: truncator) }
                        try channel.pipeline.syncOperations.addHandler(truncator)
                    }
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, role: .client, serverHostname: serverHostname))
                    if requireH2 { try channel.pipeline.syncOperations.addHandler(negotiation(on: channel)) }
                    try channel.pipeline.syncOperations.addHandler(
                        TLSTestRecorder(observations, echo: false, writeOnActive: writeOnActive))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TLSTestClient(channel: channel, observations: observations, truncator: holder.withLock { $0?.truncator })
    }

    /// A plain TCP connection (no TLS) with a recorder.
    static func connectRaw(port: Int) async throws -> TLSTestClient {
        let observations = TLSTestObservations(expectsHandshake: false)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSTestRecorder(observations, echo: false))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TLSTestClient(channel: channel, observations: observations, truncator: nil)
    }

    /// Writes `bytes` and waits until the server's echo of them has arrived.
    func echoRoundTrip(_ bytes: [UInt8]) async throws {
        let before = observations.receivedCount
        try await wait(channel.writeAndFlush(ByteBuffer(bytes: bytes)), "the write")
        try await until("the echo") { observations.receivedCount >= before + bytes.count }
        #expect(Array(observations.receivedBytes[before...]) == bytes)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// A weak reference to a handler, to see that it is freed.
private final class TLSTestWeakHandler: @unchecked Sendable {  // only ever checked for nil (weak loads are thread-safe); never dereferenced
    private weak var handler: TLSHandler?
    init(_ handler: TLSHandler) { self.handler = handler }
    var isFreed: Bool { handler == nil }
}

/// Carries the truncator out of the channel initializer.
private struct TLSTestTruncatorBox: @unchecked Sendable {  // the handler is only used on its channel's event loop
    let truncator: TLSTestTruncator
}
