import NIOCore
import NIOConcurrencyHelpers

/// The server's open connections, so that a shutdown reaches each of them.
final class ConnectionPool: Sendable {
    private let connections = NIOLockedValueBox<[ObjectIdentifier: ConnectionReference]>([:])

    func add(_ connection: ConnectionReference) {
        connections.withLockedValue { $0[connection.id] = connection }
    }

    func remove(_ connection: ConnectionReference) {
        connections.withLockedValue { $0[connection.id] = nil }
    }

    var all: [ConnectionReference] { connections.withLockedValue { Array($0.values) } }

    var count: Int { connections.withLockedValue { $0.count } }
}
