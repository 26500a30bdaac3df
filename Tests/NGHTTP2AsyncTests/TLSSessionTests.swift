import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import Testing

@testable import NGHTTP2Async

/// TLS at the session level: ClientSession (https://) and ServerSession (Configuration.tls) against nghttpd,
/// curl, nghttp, h2load, openssl s_client, each other and the h2 command, on 127.0.0.1. The handler-level TLS
/// tests are in TLSHandlerTests.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TLSSessionTests {
    // MARK: - 1. ClientSession against nghttpd over TLS

    /// Small files, a 64 MiB file streamed, and 100 concurrent GETs on one TLS connection to nghttpd.
    @Test func clientAgainstNghttpdOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files: [(name: String, bytes: [UInt8])] = [
            ("empty", []),
            ("hello.txt", Array("hello over TLS\n".utf8)),
            ("record.bin", payload(16_384, seed: 21)),
            ("record-plus-one.bin", payload(16_385, seed: 22)),
            ("mid.bin", payload(300_001, seed: 23)),
            ("window.bin", payload(1_500_000, seed: 24)),
        ]
        for file in files {
            try Data(file.bytes).write(to: URL(fileURLWithPath: "\(directory)/\(file.name)"))
        }
        let size = 64 << 20
        let expected = try writeLargeFile("\(directory)/big.bin", size: size)
        #expect(expected.count == size)

        let (nghttpd, port) = try await startTLSNghttpd(
            directory: directory, key: certificates.leafKey, certificate: certificates.leafCertificate)
        defer { nghttpd.stop() }

        let client = try await withTimeLimit(.seconds(10), "connect") {
            try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient())
        }
        #expect(client.scheme == "https")
        #expect(client.authority == "localhost:\(port)")

        // Small files, byte for byte, a few times over.
        for round in 0..<3 {
            for file in files {
                let response = try await client.get("/\(file.name)")
                #expect(response.status == .ok, "\(file.name)")
                #expect(response.contentLength == file.bytes.count, "\(file.name)")
                let received = try await response.bytes(upTo: 4 << 20)
                #expect(received == file.bytes, "round \(round), \(file.name): the bytes differ (\(received.count) bytes)")
            }
        }
        let missing = try await client.get("/no-such-file")
        #expect(missing.status == .notFound)
        _ = try await missing.bytes()

        // 64 MiB, streamed chunk by chunk.
        let response = try await client.get("/big.bin")
        #expect(response.status == .ok)
        #expect(response.contentLength == size)
        var hash = FNV1a()
        var chunks = 0
        for try await chunk in response.body {
            hash.update(chunk)
            chunks += 1
        }
        #expect(hash.count == size, "received \(hash.count) of \(size) bytes")
        #expect(hash.value == expected.value, "the 64 MiB download's checksum differs")
        #expect(chunks > 1)

        // 100 GETs at once on the same connection.
        let small = files.filter { $0.bytes.count <= 300_001 }
        let results = try await withThrowingTaskGroup(of: (Int, HTTPResponse.Status, Int32, Bool).self) { group in
            for request in 0..<100 {
                group.addTask {
                    let file = small[request % small.count]
                    let response = try await client.get("/\(file.name)")
                    let bytes = try await response.bytes(upTo: 1 << 20)
                    return (request, response.status, response.streamID, bytes == file.bytes)
                }
            }
            var results: [(Int, HTTPResponse.Status, Int32, Bool)] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(results.count == 100)
        #expect(results.allSatisfy { $0.1 == .ok }, "statuses: \(Set(results.map { $0.1.code }))")
        #expect(results.filter { !$0.3 }.isEmpty, "requests with wrong bodies: \(results.filter { !$0.3 }.map(\.0))")
        #expect(Set(results.map(\.2)).count == 100, "each request has its own stream (one connection)")

        let last = try await client.get("/hello.txt")
        #expect(try await last.text() == "hello over TLS\n")
        await client.close()
    }

    // MARK: - 2. Verification failures

    /// Wrong host, untrusted CA (the default: system roots), expired: `connect` throws the typed error with
    /// OpenSSL's reason, quickly.
    @Test func verificationFailuresAgainstNghttpd() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("secret\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/index.html"))

        let cases: [(name: String, key: String, certificate: String, configuration: ClientSession.Configuration, reason: String)] = [
            ("wrong host", certificates.wrongHostKey, certificates.wrongHostCertificate, certificates.trustingClient(), "hostname mismatch"),
            (
                "untrusted CA (default configuration)", certificates.leafKey, certificates.leafCertificate, ClientSession.Configuration(),
                "unable to get local issuer certificate"
            ),
            ("expired", certificates.expiredKey, certificates.expiredCertificate, certificates.trustingClient(), "certificate has expired"),
        ]
        for (name, key, certificate, configuration, reason) in cases {
            let (nghttpd, port) = try await startTLSNghttpd(directory: directory, key: key, certificate: certificate)
            defer { nghttpd.stop() }
            let start = ContinuousClock.now
            do {
                let session = try await withTimeLimit(.seconds(5), "\(name): connect") {
                    try await ClientSession.connect(to: "https://localhost:\(port)", configuration: configuration)
                }
                await session.close()
                Issue.record("\(name): connected although the certificate should not verify")
            } catch let error as TLSError {
                #expect(error.description.contains(reason), "\(name): \(error)")
                #expect(error == .certificateVerifyFailed(reason: reason), "\(name): \(error)")
            } catch {
                Issue.record("\(name): expected a TLSError, got \(type(of: error)): \(error)")
            }
            #expect(ContinuousClock.now - start < .seconds(5), "\(name)")
        }

        // The one-shot API uses the default configuration too (system roots): the test CA is not trusted.
        let (nghttpd, port) = try await startTLSNghttpd(
            directory: directory, key: certificates.leafKey, certificate: certificates.leafCertificate)
        defer { nghttpd.stop() }
        do {
            let response = try await withTimeLimit(.seconds(5), "HTTP2.get") { try await HTTP2.get("https://localhost:\(port)/index.html") }
            Issue.record("HTTP2.get succeeded with an untrusted certificate: \(response.status)")
        } catch let error as TLSError {
            #expect(error == .certificateVerifyFailed(reason: "unable to get local issuer certificate"), "\(error)")
        } catch {
            Issue.record("HTTP2.get: expected a TLSError, got \(type(of: error)): \(error)")
        }
    }

    /// nghttpd killed under an open TLS connection (TCP closed, no GOAWAY, no close_notify): the session ends,
    /// says it allows no more requests, and a request on it throws instead of waiting forever.
    @Test func requestAfterTheTLSPeerVanished() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("here\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/index.html"))
        let (nghttpd, port) = try await startTLSNghttpd(
            directory: directory, key: certificates.leafKey, certificate: certificates.leafCertificate)
        defer { nghttpd.stop() }
        let client = try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient())
        let first = try await client.get("/index.html")
        #expect(try await first.text() == "here\n")

        nghttpd.stop()
        try await withTimeLimit(.seconds(5), "the session to notice the closed connection") { await client.waitUntilClosed() }
        #expect(await client.isRequestAllowed == false, "isRequestAllowed after the connection closed")
        do {
            let response = try await withTimeLimit(.seconds(5), "a request on the closed session") { try await client.get("/index.html") }
            Issue.record("a request on a closed session got \(response.status)")
        } catch is TimeLimitExceeded {
            Issue.record("a request on a session whose connection had closed hung (no error within 5 s)")
        } catch {
            print("a request on the closed session threw \(error)")
        }
        await client.close()
    }

    // MARK: - 3. ServerSession with TLS under real peers

    /// curl, nghttp, h2load and openssl s_client against our TLS server.
    @Test func serverUnderPeersOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await Self.startServer(certificates)
        let port = server.port
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // curl, verifying against the test CA.
        let curl = try await runBounded(
            "curl", ["--http2", "--cacert", certificates.caCertificate, "-sS", "https://localhost:\(port)/get", "-w", "%{http_version}"])
        #expect(curl.status == 0, "curl failed: \(curl.stderr)")
        #expect(curl.text.hasSuffix("}\n2"), "\(curl.text)")
        let json = try #require(
            (try? JSONSerialization.jsonObject(with: Data(curl.text.dropLast().utf8))) as? [String: String], "not JSON: \(curl.text)")
        #expect(json["scheme"] == "https")
        #expect(json["path"] == "/get")
        #expect(json["authority"] == "localhost:\(port)")
        // A body through curl, and curl without the CA refuses the server (exit 60).
        let echoed = try await runBounded(
            "curl", ["--http2", "--cacert", certificates.caCertificate, "-sS", "--data-binary", "over tls", "https://localhost:\(port)/echo"])
        #expect(echoed.text == "over tls", "\(echoed.text) \(echoed.stderr)")
        let untrusted = try await runBounded("curl", ["--http2", "-sS", "https://localhost:\(port)/get"])
        #expect(untrusted.status == 60, "curl without the CA: \(untrusted.status) \(untrusted.stderr)")

        // nghttp: two URIs on one connection (nghttp does not verify by default).
        let nghttp = try await runBounded("nghttp", ["-nv", "https://localhost:\(port)/a", "https://localhost:\(port)/b"])
        #expect(nghttp.status == 0, "nghttp failed: \(nghttp.stderr)\n\(nghttp.text.suffix(2000))")
        #expect(nghttp.text.components(separatedBy: ":status: 200").count - 1 == 2, "\(nghttp.text.suffix(3000))")
        #expect(nghttp.text.contains("The negotiated protocol: h2"), "\(nghttp.text.prefix(2000))")

        // h2load over TLS.
        let load = try await runBounded(
            "h2load", ["-n", "20000", "-c", "4", "-m", "20", "-t", "1", "https://127.0.0.1:\(port)/"], seconds: 180)
        #expect(load.status == 0, "h2load failed: \(load.stderr)")
        let lines = load.text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let finished = lines.first { $0.hasPrefix("finished in") }
        let requests = lines.first { $0.hasPrefix("requests:") }
        print("h2load over TLS against ServerSession: \(finished ?? "no 'finished in' line")")
        print("h2load over TLS: \(requests ?? "no 'requests:' line")")
        let counts = ServerUnderPeersTests.counts(in: requests ?? "")
        #expect(counts["total"] == 20_000, "\(requests ?? load.text)")
        #expect(counts["succeeded"] == 20_000, "\(requests ?? load.text)")
        #expect(counts["failed"] == 0, "\(requests ?? load.text)")
        #expect(counts["errored"] == 0, "\(requests ?? load.text)")
        #expect(lines.contains("Application protocol: h2"), "\(load.text)")

        // openssl s_client offering h2: verified, ALPN h2.
        let base = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certificates.caCertificate, "-servername", "localhost",
            "-verify_return_error",
        ]
        let withALPN = try await runBounded("openssl", base + ["-alpn", "h2"])
        #expect(withALPN.text.contains("ALPN protocol: h2"), "\(withALPN.text)\n\(withALPN.stderr)")
        #expect(withALPN.text.contains("Verify return code: 0 (ok)"), "\(withALPN.text)")

        // Without ALPN: s_client keeps reading (-ign_eof) until the server closes; the server must close by
        // itself, and must not have sent any HTTP/2 frame (a frame header starts with a 0 byte; s_client's own
        // output is text).
        let started = ContinuousClock.now
        let withoutALPN = try await runBounded("openssl", base + ["-ign_eof"], seconds: 15)
        let took = ContinuousClock.now - started
        #expect(took < .seconds(10) && withoutALPN.status != 137, "the server did not close the connection without ALPN (s_client ran \(took))")
        #expect(withoutALPN.text.contains("No ALPN negotiated") || withoutALPN.stderr.contains("alert"), "\(withoutALPN.text)\n\(withoutALPN.stderr)")
        #expect(!withoutALPN.stdout.contains(0), "bytes that look like HTTP/2 frames were received without ALPN h2")

        // Still serving.
        let client = try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient())
        let response = try await client.get("/after")
        #expect(response.status == .ok)
        #expect(try await response.text() == "ok /after")
        await client.close()
        try await expectConnectionCount(server, 0)
        await server.close()
    }

    // MARK: - 4. Mutual TLS

    /// Our server requiring client certificates: our client with the test client certificate gets 200, one
    /// without throws (TLS 1.3: at connect or at the first request; TLS 1.2: at connect). Our client presenting
    /// its certificate to `nghttpd --verify-client`.
    @Test func mutualTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await Self.startServer(certificates) { tls in
            tls.trustRoots = .file(certificates.caCertificate)
            tls.clientCertificateVerification = .required
        }
        let port = server.port

        let good = try await withTimeLimit(.seconds(10), "connect with a client certificate") {
            try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient(presentingCertificate: true))
        }
        let response = try await good.get("/mtls")
        #expect(response.status == .ok)
        #expect(try await response.text() == "ok /mtls")
        let second = try await good.get("/again")
        #expect(second.status == .ok)
        _ = try await second.bytes()
        await good.close()

        // Without a certificate: the request right after connecting, and 200 ms later (by then, with TLS 1.3, the
        // server's "certificate required" alert has arrived and the connection is gone).
        for (maximum, delay) in [(NGHTTP2TLSConfiguration.TLSVersion.tlsv13, Duration.zero), (.tlsv13, .milliseconds(200)), (.tlsv12, .zero)] {
            var configuration = certificates.trustingClient()
            configuration.tls?.maximumTLSVersion = maximum
            let outcome = await requestOutcome(url: "https://localhost:\(port)/nocert", configuration: configuration, delayBeforeRequest: delay)
            let name = "mutual TLS, \(maximum), no client certificate, request \(delay) after connect"
            switch outcome {
            case .connectFailed(let error):
                print("\(name): connect threw \(error)")
            case .requestFailed(let error):
                #expect(maximum == .tlsv13, "\(name): with TLS 1.2 the handshake itself must fail; the request failed instead: \(error)")
                print("\(name): the request threw \(error)")
            case .succeeded(let status):
                Issue.record("\(name): got \(status)")
            case .timedOut(let what):
                Issue.record("\(name): hung (\(what))")
            }
        }
        // TLS 1.3 without a certificate, if connect returned: the server's alert ends the session soon after.
        if let lingering = try? await withTimeLimit(.seconds(10), "connect", {
            try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient())
        }) {
            do {
                try await withTimeLimit(.seconds(5), "the session to end") { await lingering.waitUntilClosed() }
                #expect(await lingering.isRequestAllowed == false, "isRequestAllowed on a session whose connection is gone")
            } catch {
                Issue.record("TLS 1.3 without a client certificate: the session did not end after the server's alert: \(error)")
            }
            await lingering.close()
        }

        let after = try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient(presentingCertificate: true))
        #expect(try await after.get("/after").status == .ok)
        await after.close()
        try await expectConnectionCount(server, 0)
        await server.close()

        // nghttpd --verify-client: it asks for a certificate and fails the handshake without one, but 1.52 has
        // no option for a CA (it accepts any certificate), so this checks that ours is presented, not verified.
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("mutual\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/index.html"))
        let (nghttpd, nghttpdPort) = try await startTLSNghttpd(
            directory: directory, key: certificates.leafKey, certificate: certificates.leafCertificate, extra: ["--verify-client"])
        defer { nghttpd.stop() }
        let withCertificate = await requestOutcome(
            url: "https://localhost:\(nghttpdPort)/index.html", configuration: certificates.trustingClient(presentingCertificate: true),
            expectBody: "mutual\n")
        if case .succeeded(let status) = withCertificate {
            #expect(status == .ok)
        } else {
            Issue.record("nghttpd --verify-client with our client certificate: \(withCertificate)")
        }
        for delay in [Duration.zero, .milliseconds(200)] {
            let withoutCertificate = await requestOutcome(
                url: "https://localhost:\(nghttpdPort)/index.html", configuration: certificates.trustingClient(), delayBeforeRequest: delay)
            let name = "nghttpd --verify-client, no client certificate, request \(delay) after connect"
            switch withoutCertificate {
            case .connectFailed, .requestFailed:
                print("\(name): \(withoutCertificate)")
            case .succeeded(let status):
                Issue.record("\(name): served with \(status)")
            case .timedOut(let what):
                Issue.record("\(name): hung (\(what))")
            }
        }
    }

    // MARK: - 5. Large bodies both ways

    /// 64 MiB uploaded with a writer to the echo handler comes back identical; 64 MiB written by the server's
    /// writer arrives identical.
    @Test func largeBodiesOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let chunkSize = 1 << 20
        let chunkCount = 64
        let total = chunkSize * chunkCount
        let chunks = (0..<chunkCount).map { payload(chunkSize, seed: UInt64($0) + 5_000) }
        var expected = FNV1a()
        for chunk in chunks { chunk.withUnsafeBytes { expected.update($0) } }

        let server = try await ServerSession.bind(
            host: "127.0.0.1", port: 0, configuration: certificates.tlsServer()
        ) { request in
            switch request.path {
            case "/echo":
                return ServerSession.Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .stream(request.body))
            case "/download":
                return ServerSession.Response(
                    status: .ok, headers: [.contentLength: "\(total)"],
                    body: .writer { writer in
                        for chunk in chunks {
                            // Uneven pieces: 1, 16 KiB + 1, and the rest of the chunk.
                            try await writer.write(chunk[0..<1])
                            try await writer.write(chunk[1..<16_386])
                            try await writer.write(chunk[16_386...])
                        }
                    })
            default:
                return ServerSession.Response(status: .notFound)
            }
        }
        let client = try await ClientSession.connect(to: "https://127.0.0.1:\(server.port)", configuration: certificates.trustingClient())

        // Upload, read back while it is still being sent.
        let pieces = [1, 1000, 16_384, 65_537, 300_000, 1 << 20]
        let echo = try await client.post(
            "/echo",
            body: .writer { writer in
                var which = 0
                for chunk in chunks {
                    var offset = 0
                    while offset < chunk.count {
                        let end = min(offset + pieces[which % pieces.count], chunk.count)
                        try await writer.write(chunk[offset..<end])
                        offset = end
                        which += 1
                    }
                }
            })
        #expect(echo.status == .ok)
        var echoed = FNV1a()
        for try await chunk in echo.body { echoed.update(chunk) }
        #expect(echoed.count == total, "echoed \(echoed.count) of \(total) bytes")
        #expect(echoed.value == expected.value, "the echoed 64 MiB differ")

        // Download.
        let download = try await client.get("/download")
        #expect(download.status == .ok)
        #expect(download.contentLength == total)
        var downloaded = FNV1a()
        for try await chunk in download.body { downloaded.update(chunk) }
        #expect(downloaded.count == total, "downloaded \(downloaded.count) of \(total) bytes")
        #expect(downloaded.value == expected.value, "the downloaded 64 MiB differ")

        await client.close()
        await server.close()
    }

    // MARK: - 6. Bad input on the TLS port

    /// Plaintext HTTP/2, random bytes, a silent client (closed by the 300 ms handshake timeout), and clients
    /// that vanish mid-handshake: every connection is closed and released, and the server keeps serving.
    @Test func badInputOnTheTLSPort() async throws {
        let certificates = try await TestCertificates.shared()
        let server = try await Self.startServer(certificates) { _ in } configure: { $0.handshakeTimeout = .milliseconds(300) }
        let port = server.port

        let client = try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient())
        #expect(try await client.get("/before").status == .ok)

        // A plaintext HTTP/2 preface and SETTINGS, as an h2c client would send.
        let h2c = try await RawConnection.connect(port: port)
        try await h2c.send(BadInputSocketTests.preface + [0, 0, 0, 0x4, 0, 0, 0, 0, 0])
        #expect(await h2c.waitForClose(timeout: .seconds(5)), "plaintext preface: the server did not close the connection")
        #expect(h2c.received.isEmpty || h2c.received.first == 0x15, "plaintext preface: the server answered with \(h2c.received.prefix(16))")

        // Random bytes, and random bytes inside a record that claims to be a handshake.
        let random = try await RawConnection.connect(port: port)
        var garbage = payload(4096, seed: 99)
        garbage[0] = 0x42
        try await random.send(garbage)
        #expect(await random.waitForClose(timeout: .seconds(5)), "random bytes: the server did not close the connection")
        #expect(random.received.isEmpty || random.received.first == 0x15, "random bytes: \(random.received.prefix(16))")
        let badRecord = try await RawConnection.connect(port: port)
        try await badRecord.send([0x16, 0x03, 0x01, 0x00, 0x80] + payload(128, seed: 100))
        #expect(await badRecord.waitForClose(timeout: .seconds(5)), "a bad handshake record: the server did not close the connection")

        // Connects and sends nothing: closed by the server after the handshake timeout.
        let silent = try await RawConnection.connect(port: port)
        let start = ContinuousClock.now
        let closedSilent = await silent.waitForClose(timeout: .seconds(5))
        let silentFor = ContinuousClock.now - start
        #expect(closedSilent, "a silent client was not closed")
        #expect(silentFor < .seconds(2), "a silent client was closed after \(silentFor)")
        #expect(silentFor > .milliseconds(200), "a silent client was closed before the handshake timeout: \(silentFor)")

        // Half of a real ClientHello (ours, captured), then gone; a record header alone, then gone; a whole
        // ClientHello, then gone before the server's answer is read.
        let hello = try await captureClientHello(certificates)
        #expect(hello.count > 100 && hello[0] == 0x16, "captured \(hello.count) bytes")
        for bytes in [Array(hello[..<(hello.count / 2)]), Array(hello[..<5]), hello] {
            let quitter = try await RawConnection.connect(port: port)
            try await quitter.send(bytes)
            try await Task.sleep(for: .milliseconds(20))
            await quitter.close()
        }

        // The good client is unaffected; every bad connection is released.
        #expect(try await client.get("/during").status == .ok)
        try await expectConnectionCount(server, 1)
        await client.close()
        try await expectConnectionCount(server, 0)

        let fresh = try await ClientSession.connect(to: "https://localhost:\(port)", configuration: certificates.trustingClient())
        let response = try await fresh.get("/fresh")
        #expect(response.status == .ok)
        #expect(try await response.text() == "ok /fresh")
        await fresh.close()
        try await expectConnectionCount(server, 0)
        await server.close()
    }

    // MARK: - 7. The h2 command over TLS

    @Test func h2CommandOverTLS() async throws {
        let certificates = try await TestCertificates.shared()
        let port = try await Peers.freePort()
        let serve = try await Peers.start(
            Peers.h2, ["serve", "--port", "\(port)", "--tls-cert", certificates.leafCertificate, "--tls-key", certificates.leafKey, "--quiet"],
            waitForPort: port)
        defer { serve.stop() }
        let url = "https://localhost:\(port)/get"

        let verified = try await runBounded(Peers.h2, ["--cacert", certificates.caCertificate, url])
        #expect(verified.status == 0, "\(verified.stderr)")
        let json = try #require(
            (try? JSONSerialization.jsonObject(with: verified.stdout)) as? [String: Any],
            "not JSON: exit \(verified.status), stdout \(verified.text), stderr \(verified.stderr)")
        #expect((json["url"] as? String)?.hasPrefix("https://localhost:\(port)/get") == true, "\(json["url"] ?? "no url")")

        let unverified = try await runBounded(Peers.h2, [url])
        #expect(unverified.status == 1, "without --cacert: exit \(unverified.status), \(unverified.text)")
        #expect(unverified.stderr.contains("certificate verify failed"), "\(unverified.stderr)")

        let insecure = try await runBounded(Peers.h2, ["-k", url])
        #expect(insecure.status == 0, "\(insecure.stderr)")
        let insecureJSON = (try? JSONSerialization.jsonObject(with: insecure.stdout)) as? [String: Any]
        #expect((insecureJSON?["url"] as? String)?.hasPrefix("https://") == true, "\(insecure.text)")

        let load = try await runBounded(
            Peers.h2, ["load", "-n", "2000", "-c", "1", "-m", "10", "--cacert", certificates.caCertificate, url], seconds: 120)
        #expect(load.status == 0, "\(load.stderr)")
        #expect(load.text.contains("2000 succeeded"), "\(load.text)")
        #expect(load.text.contains("requests: 2000 total, 2000 succeeded, 0 failed"), "\(load.text)")
        print("h2 load over TLS: \(load.text.split(separator: "\n").first ?? "")")

        // `h2 serve --client-ca` with `h2 --cert/--key`.
        let mtlsPort = try await Peers.freePort()
        let mtls = try await Peers.start(
            Peers.h2,
            [
                "serve", "--port", "\(mtlsPort)", "--tls-cert", certificates.leafCertificate, "--tls-key", certificates.leafKey,
                "--client-ca", certificates.caCertificate, "--quiet",
            ],
            waitForPort: mtlsPort)
        defer { mtls.stop() }
        let mtlsURL = "https://localhost:\(mtlsPort)/get"
        let presented = try await runBounded(
            Peers.h2, ["--cacert", certificates.caCertificate, "--cert", certificates.clientCertificate, "--key", certificates.clientKey, mtlsURL])
        #expect(presented.status == 0, "\(presented.stderr)")
        #expect(presented.text.contains("\"url\""), "exit \(presented.status), stdout \(presented.text), stderr \(presented.stderr)")
        let absent = try await runBounded(Peers.h2, ["--timeout", "10", "--cacert", certificates.caCertificate, mtlsURL])
        #expect(absent.status == 1, "without a client certificate: exit \(absent.status), \(absent.text) \(absent.stderr)")
    }

    // MARK: - Helpers

    /// `/get`: JSON with scheme, path and authority; `/echo`: the body back; anything else: "ok PATH".
    static func handler(_ request: ServerSession.Request) async throws -> ServerSession.Response {
        switch request.path {
        case "/get":
            let json = [
                "\"scheme\":\"\(request.scheme ?? "")\"",
                "\"path\":\"\(request.path)\"",
                "\"authority\":\"\(request.authority ?? "")\"",
            ].joined(separator: ",")
            return ServerSession.Response(status: .ok, headers: [.contentType: "application/json"], body: .text("{\(json)}\n"))
        case "/echo":
            return ServerSession.Response(status: .ok, body: .stream(request.body))
        default:
            return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .text("ok \(request.path)"))
        }
    }

    /// Our TLS server with the localhost leaf and ``handler(_:)``.
    static func startServer(
        _ certificates: TestCertificates,
        tls: (inout NGHTTP2TLSConfiguration) -> Void = { _ in },
        configure: (inout ServerSession.Configuration) -> Void = { _ in }
    ) async throws -> ServerSession {
        var configuration = certificates.tlsServer()
        tls(&configuration.tls!)
        configure(&configuration)
        return try await ServerSession.bind(host: "127.0.0.1", port: 0, configuration: configuration, handler: handler)
    }
}

// MARK: - File-level helpers

extension TestCertificates {
    /// A client configuration trusting only the test CA (full verification), optionally presenting the client
    /// certificate.
    fileprivate func trustingClient(presentingCertificate: Bool = false) -> ClientSession.Configuration {
        var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caCertificate)
        if presentingCertificate {
            tls.certificateChain = .file(clientCertificate)
            tls.privateKey = .file(clientKey)
        }
        var configuration = ClientSession.Configuration()
        configuration.tls = tls
        configuration.connectTimeout = .seconds(5)
        return configuration
    }

    /// A server configuration with the localhost leaf.
    fileprivate func tlsServer() -> ServerSession.Configuration {
        var configuration = ServerSession.Configuration()
        configuration.tls = .makeServerConfiguration(certificateChain: .file(leafCertificate), privateKey: .file(leafKey))
        configuration.gracePeriod = .seconds(2)
        return configuration
    }
}

/// Runs a peer to completion under `timeout -s KILL` with an empty stdin pipe. The child kills itself when it
/// hangs: `Peers.run` waits for the child's output on blocking reads in detached tasks, which can occupy every
/// thread of the cooperative pool (2 cores), so its own time limit (and the suite's) may never get to run.
/// An explicit empty stdin also matters for `h2`, which sends stdin as a request body when it is a pipe or a
/// regular file: on some machines /dev/null is a regular file that other processes write into, and a GET
/// then turns into a POST.
private func runBounded(_ executable: String, _ arguments: [String], seconds: Int = 30) async throws -> Peers.Result {
    try await Peers.run(
        "timeout", ["-s", "KILL", "\(seconds)", try Peers.path(of: executable)] + arguments, stdin: Data(), timeout: .seconds(seconds + 30))
}

/// nghttpd over TLS on a free port (the key comes before the certificate).
private func startTLSNghttpd(directory: String, key: String, certificate: String, extra: [String] = []) async throws -> (Peers.Running, Int) {
    let port = try await Peers.freePort()
    let running = try await Peers.start(
        "nghttpd", ["-a", "127.0.0.1", "-d", directory] + extra + ["\(port)", key, certificate], waitForPort: port)
    return (running, port)
}

/// Writes `size` deterministic bytes in 1 MiB pieces and returns their checksum.
private func writeLargeFile(_ path: String, size: Int) throws -> FNV1a {
    let chunkSize = 1 << 20
    guard FileManager.default.createFile(atPath: path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
    let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? file.close() }
    var hash = FNV1a()
    for index in 0..<(size / chunkSize) {
        let chunk = payload(chunkSize, seed: UInt64(index) + 100)
        chunk.withUnsafeBytes { hash.update($0) }
        try file.write(contentsOf: chunk)
    }
    return hash
}

/// The server's connection count reaches `count` within 5 seconds.
private func expectConnectionCount(_ server: ServerSession, _ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while server.connectionCount != count, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
    #expect(server.connectionCount == count, "open connections on the server", sourceLocation: sourceLocation)
}

private struct TimeLimitExceeded: Error, CustomStringConvertible {
    var what: String
    var limit: Duration
    var description: String { "\(what) did not finish within \(limit)" }
}

/// A continuation resumed by whichever comes first.
private final class FirstResult<T: Sendable>: @unchecked Sendable {  // state under the lock
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?

    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = continuation }

    func resume(_ result: Result<T, any Error>) {
        let waiting = lock.withLock {
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: result)
    }
}

/// The tasks racing in ``withTimeLimit(_:_:_:)``.
private final class StartedTasks: @unchecked Sendable {  // under the lock
    let lock = NSLock()
    var tasks: [Task<Void, Never>] = []
}

/// Runs `operation`, or throws ``TimeLimitExceeded`` after `limit` even when the operation ignores
/// cancellation (it is then left running, cancelled, and its result dropped), so a hang fails the test
/// instead of blocking it.
private func withTimeLimit<T: Sendable>(
    _ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let started = StartedTasks()
    defer { started.lock.withLock { for task in started.tasks { task.cancel() } } }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let first = FirstResult(continuation)
        let work = Task {
            do { first.resume(.success(try await operation())) } catch { first.resume(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            first.resume(.failure(TimeLimitExceeded(what: what, limit: limit)))
        }
        started.lock.withLock { started.tasks = [work, timer] }
    }
}

private enum RequestOutcome: Sendable, CustomStringConvertible {
    case connectFailed(any Error)
    case requestFailed(any Error)
    case succeeded(HTTPResponse.Status)
    case timedOut(String)

    var description: String {
        switch self {
        case .connectFailed(let error): "connect threw \(error)"
        case .requestFailed(let error): "the request threw \(error)"
        case .succeeded(let status): "succeeded with \(status)"
        case .timedOut(let what): "timed out: \(what)"
        }
    }
}

/// Connects and GETs `url` (each within 10 seconds; the GET `delayBeforeRequest` after the connect), closing
/// the session afterwards; with `expectBody`, a different body is a failed request.
private func requestOutcome(
    url: String, configuration: ClientSession.Configuration, delayBeforeRequest: Duration = .zero, expectBody: String? = nil
) async -> RequestOutcome {
    let session: ClientSession
    do {
        session = try await withTimeLimit(.seconds(10), "connect") { try await ClientSession.connect(to: url, configuration: configuration) }
    } catch let error as TimeLimitExceeded {
        return .timedOut(error.description)
    } catch {
        return .connectFailed(error)
    }
    do {
        if delayBeforeRequest > .zero { try await Task.sleep(for: delayBeforeRequest) }
        let status = try await withTimeLimit(.seconds(10), "the request") {
            let response = try await session.request(.get, url)
            let text = try await response.text()
            if let expectBody, text != expectBody { throw UnexpectedBody(text: text) }
            return response.status
        }
        await session.close()
        return .succeeded(status)
    } catch let error as TimeLimitExceeded {
        return .timedOut(error.description)
    } catch {
        await session.close()
        return .requestFailed(error)
    }
}

private struct UnexpectedBody: Error {
    var text: String
}

/// The first TLS record our client sends (its ClientHello), captured by a plain TCP listener.
private func captureClientHello(_ certificates: TestCertificates) async throws -> [UInt8] {
    final class Captured: @unchecked Sendable {  // under the lock
        let lock = NSLock()
        var collectors: [RawConnection.Collector] = []
        var channels: [any Channel] = []
    }
    let captured = Captured()
    let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let collector = RawConnection.Collector()
                try channel.pipeline.syncOperations.addHandler(collector)
                captured.lock.withLock {
                    captured.collectors.append(collector)
                    captured.channels.append(channel)
                }
            }
        }
        .bind(host: "127.0.0.1", port: 0)
        .get()
    let port = listener.localAddress!.port!
    var configuration = certificates.trustingClient()
    configuration.connectTimeout = .seconds(3)
    let attempt = Task { try await ClientSession.connect(to: "https://localhost:\(port)", configuration: configuration) }

    func record() -> [UInt8]? {
        let bytes = captured.lock.withLock { captured.collectors.first.map { collector in collector.lock.withLock { collector.bytes } } } ?? []
        guard bytes.count >= 5 else { return nil }
        let length = Int(bytes[3]) << 8 | Int(bytes[4])
        return bytes.count >= 5 + length ? Array(bytes[..<(5 + length)]) : nil
    }
    let deadline = ContinuousClock.now + .seconds(5)
    var hello = record()
    while hello == nil, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(5))
        hello = record()
    }
    for channel in captured.lock.withLock({ captured.channels }) { try? await channel.close() }
    try? await listener.close()
    if let session = try? await attempt.value {
        await session.close()
        Issue.record("a ClientSession connected to a listener that never answered")
    }
    return try #require(hello, "no ClientHello captured")
}

