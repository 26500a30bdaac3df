import Testing
import NIOCore
import NGHTTP2
@testable import NGHTTP2Async

/// One channel setup for both roles: TLS, then the negotiated protocol's handler, and nothing left in between.
@Suite struct ChannelSetupTests {
    @Test func afterALPNChoseH2OnlyTheTLSAndHTTP2HandlersStayInThePipeline() async throws {
        let certificates = try await TestCertificates.shared()
        var serverConfiguration = ServerSession.Configuration()
        serverConfiguration.tls = .makeServerConfiguration(
            certificateChain: .file(certificates.leafCertificate),
            privateKey: .file(certificates.leafKey)
        )
        let server = try await ServerSession.bind(port: 0, configuration: serverConfiguration) { _ in
            ServerSession.Response(body: .text("ok"))
        }
        var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.caCertificate)
        var configuration = ClientSession.Configuration()
        configuration.tls = tls
        let client = try await ClientSession.connect(to: "https://localhost:\(server.port)", configuration: configuration)
        #expect(try await client.get("/").text() == "ok")
        let pipeline = client.channel.pipeline
        let handlers = try await client.channel.eventLoop.submit {
            let sync = pipeline.syncOperations
            return (
                (try? sync.handler(type: TLSHandler.self)) != nil,
                (try? sync.handler(type: ConnectionHandler.self)) != nil,
                (try? sync.handler(type: ProtocolNegotiationHandler<NegotiatedConnection>.self)) != nil
            )
        }.get()
        #expect(handlers.0 && handlers.1, "TLS and HTTP/2 handlers are in place")
        #expect(!handlers.2, "the negotiation handler removed itself")
        await client.close()
        await server.close()
    }
}
