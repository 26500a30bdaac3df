import Foundation
@testable import NGHTTP2Async

private let directoryToRemoveAtExit = LockedState<String?>(nil)

/// A small PKI for TLS tests, made once per test process with the openssl CLI in a temporary
/// directory: a CA, a leaf for `localhost` + 127.0.0.1, a wrong-host leaf (SAN `DNS:example.org`
/// only), an expired leaf (2020, via `openssl ca`), and a client certificate for mutual TLS. All keys
/// are P-256.
struct TestCertificates: Sendable {
    let directory: String

    /// The CA's certificate (`CN=test-ca`, self-signed).
    var caCertificate: String { "\(directory)/ca.pem" }
    /// Leaf `CN=localhost`, SAN `DNS:localhost, IP:127.0.0.1`, signed by the CA.
    var leafCertificate: String { "\(directory)/leaf.pem" }
    var leafKey: String { "\(directory)/leaf.key" }
    /// Leaf `CN=example.org`, SAN `DNS:example.org` only.
    var wrongHostCertificate: String { "\(directory)/wronghost.pem" }
    var wrongHostKey: String { "\(directory)/wronghost.key" }
    /// Leaf for localhost/127.0.0.1, valid only in January 2020.
    var expiredCertificate: String { "\(directory)/expired.pem" }
    var expiredKey: String { "\(directory)/expired.key" }
    /// Client certificate `CN=test-client` (extendedKeyUsage clientAuth).
    var clientCertificate: String { "\(directory)/client.pem" }
    var clientKey: String { "\(directory)/client.key" }

    /// The shared set (created on first use).
    static func shared() async throws -> TestCertificates { try await creation.value }

    private static let creation = Task { try await TestCertificates.create() }

    private static func create() async throws -> TestCertificates {
        let directory = try Peers.temporaryDirectory()
        // The set lives as long as the test process: removed when it exits.
        directoryToRemoveAtExit.withLock { $0 = directory }
        atexit {
            if let directory = directoryToRemoveAtExit.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
        }
        let certificates = TestCertificates(directory: directory)
        func openssl(_ arguments: [String]) async throws {
            let result = try await Peers.run("openssl", arguments)
            guard result.status == 0 else {
                throw CertificateError(command: "openssl " + arguments.joined(separator: " "), output: result.stderr)
            }
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try await openssl(
            ["req", "-x509"] + ec + ["-keyout", "\(directory)/ca.key", "-out", certificates.caCertificate, "-days", "30", "-subj", "/CN=test-ca"])

        /// A key + CSR, then a certificate signed by the CA with `extensions`.
        func leaf(_ name: String, subject: String, extensions: String) async throws {
            try await openssl(
                ["req"] + ec + ["-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr", "-subj", subject])
            try extensions.write(toFile: "\(directory)/\(name).ext", atomically: true, encoding: .utf8)
            try await openssl([
                "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", certificates.caCertificate,
                "-CAkey", "\(directory)/ca.key", "-CAcreateserial", "-out", "\(directory)/\(name).pem", "-days", "30",
                "-extfile", "\(directory)/\(name).ext",
            ])
        }
        try await leaf("leaf", subject: "/CN=localhost", extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        try await leaf("wronghost", subject: "/CN=example.org", extensions: "subjectAltName=DNS:example.org\n")
        try await leaf("client", subject: "/CN=test-client", extensions: "extendedKeyUsage=clientAuth\n")

        // Expired: `openssl x509 -req` cannot back-date; `openssl ca` can.
        try FileManager.default.createDirectory(atPath: "\(directory)/newcerts", withIntermediateDirectories: true)
        try "".write(toFile: "\(directory)/index.txt", atomically: true, encoding: .utf8)
        try "1000\n".write(toFile: "\(directory)/serial", atomically: true, encoding: .utf8)
        let caConfig = """
            [ ca ]
            default_ca = test_ca
            [ test_ca ]
            database = \(directory)/index.txt
            serial = \(directory)/serial
            new_certs_dir = \(directory)/newcerts
            default_md = sha256
            policy = policy_any
            copy_extensions = copy
            unique_subject = no
            [ policy_any ]
            commonName = supplied

            """
        try caConfig.write(toFile: "\(directory)/ca.cnf", atomically: true, encoding: .utf8)
        try await openssl(
            ["req"] + ec + [
                "-keyout", certificates.expiredKey, "-out", "\(directory)/expired.csr", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
        try await openssl([
            "ca", "-batch", "-config", "\(directory)/ca.cnf", "-cert", certificates.caCertificate,
            "-keyfile", "\(directory)/ca.key", "-in", "\(directory)/expired.csr", "-out", certificates.expiredCertificate,
            "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
        ])
        return certificates
    }

    struct CertificateError: Error, CustomStringConvertible {
        var command: String
        var output: String
        var description: String { "\(command) failed: \(output)" }
    }
}
