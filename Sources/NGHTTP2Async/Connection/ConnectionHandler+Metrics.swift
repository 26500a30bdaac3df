extension ConnectionHandler {
    /// The read burst ended: its bytes are counted once (not per read or per frame).
    func countBytesRead(_ metrics: ConnectionMetrics) {
        guard bytesReadInBurst > 0 else { return }
        metrics.received(bytesReadInBurst)
        bytesReadInBurst = 0
    }

    /// The session started (SETTINGS submitted): one more connection open, and in all.
    func countConnectionOpened(_ metrics: ConnectionMetrics) {
        guard !countedAsOpen else { return }
        countedAsOpen = true
        metrics.connectionOpened()
    }

    /// The connection ended: it no longer counts as open (if it ever did).
    func countConnectionClosed(_ metrics: ConnectionMetrics) {
        guard countedAsOpen else { return }
        countedAsOpen = false
        metrics.connectionClosed()
    }
}
