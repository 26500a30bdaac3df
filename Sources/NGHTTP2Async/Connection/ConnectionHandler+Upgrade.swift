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
}
