import NGHTTP2
import HTTPTypes
import Logging

extension ConnectionHandler {
    /// Takes over a connection upgraded from HTTP/1.1 (RFC 7540 §3.2): applies the client's `HTTP2-Settings` as its
    /// first SETTINGS (libnghttp2's `nghttp2_session_upgrade2`, through ``Session/upgrade(settingsPayload:isHeadRequest:userData:)``),
    /// which opens stream 1 half-closed (remote), and hands the upgraded request to the server's handler on it. The
    /// client's connection preface follows the 101 as usual.
    func acceptUpgrade(_ upgrade: H2CUpgradeRequest) {
        guard case .server(let handler) = role else { return }
        do {
            try session.upgrade(settingsPayload: upgrade.settingsPayload, isHeadRequest: upgrade.request.method == .head)
        } catch {
            logger.debug("h2c Upgrade: the client's HTTP2-Settings were refused: \(error)")
            return terminate(.protocolError)
        }
        history.streamOneOpenedByUpgrade()
        requestReceived(streamID: 1, fields: upgrade.request.http2Fields, endStream: true, handler: handler)
    }

    /// Takes over a client connection whose h2c offer the server accepted (RFC 7540 §3.2): applies the offered
    /// settings (libnghttp2 sends them as this side's first SETTINGS) and opens stream 1, half-closed (local), for the
    /// request that carried the offer; its response resumes the request's waiting call.
    func startUpgradedClient(_ upgrade: H2CUpgradedRequest) throws {
        guard let reference else { throw HTTP2Error.sessionClosed }
        do {
            try session.upgrade(settingsPayload: upgrade.settingsPayload, isHeadRequest: upgrade.isHeadRequest)
        } catch {
            upgrade.continuation.resume(throwing: error)
            throw error
        }
        let stream = StreamContext(id: 1, inbound: StreamReader.Storage(streamID: 1, connection: reference))
        stream.response = upgrade.continuation
        streamOpened(stream, byPeer: false)
        if let timeouts = upgrade.timeouts { armStreamTimer(stream, timeouts) }
    }

    /// The handler never joined the pipeline: the upgraded request learns it (it is not resumed otherwise).
    func abandonClientUpgrade(_ error: any Error) {
        guard let clientUpgrade else { return }
        self.clientUpgrade = nil
        clientUpgrade.continuation.resume(throwing: error)
    }
}
