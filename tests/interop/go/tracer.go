package main

// What go-libp2p's holepunch service tells us: its EventTracer
// (tracer.go: DirectDial, StartHolePunch, HolePunchAttempt, EndHolePunch,
// ProtocolError) and its MetricsTracer (HolePunchFinished, which names the
// side: "initiator" or "receiver"). Both are public options of
// holepunch.NewService / libp2p.EnableHolePunching.

import (
	"strconv"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

type hpTracer peerNode

var (
	_ holepunch.EventTracer   = (*hpTracer)(nil)
	_ holepunch.MetricsTracer = (*hpTracer)(nil)
)

func (t *hpTracer) Trace(evt *holepunch.Event) {
	n := (*peerNode)(t)
	p := evt.Remote
	switch e := evt.Evt.(type) {
	case *holepunch.DirectDialEvt:
		// The initiator's unilateral upgrade, tried only when the peer
		// announced a manet.IsPublicAddr address (holepuncher.go:114).
		log.Info("holepunch: direct dial (connection reversal)", "peer", p, "success", e.Success, "elapsed", e.EllapsedTime, "err", e.Error)
	case *holepunch.StartHolePunchEvt:
		log.Info("holepunch: start", "peer", p, "dialing", e.RemoteAddrs, "rtt", e.RTT)
	case *holepunch.HolePunchAttemptEvt:
		// holepuncher.go:138-143 (initiator: isClient only on the last of
		// three attempts) and svc.go:273 (receiver: always isClient).
		n.mu.Lock()
		r := n.rel[p]
		var attempt uint32
		inbound := false
		if r != nil {
			r.attempts++
			attempt = r.attempts
			inbound = r.inbound
			r.quicServer = inbound && attempt%goMaxAttempts != 0
		}
		n.mu.Unlock()
		quic, quicRole := "client", "client (QUIC dial)"
		side := "receiver"
		if inbound {
			side = "initiator"
			if attempt%goMaxAttempts != 0 {
				quic, quicRole = "server", "server (random UDP packets to each address, then waits to accept)"
			}
		}
		// The lab reads `side` and `quic` of these lines (crates/lab/src/go.rs).
		log.Info("holepunch: attempt", "peer", p, "attempt", attempt, "tracer_attempt", e.Attempt, "side", side, "quic", quic, "quic_role", quicRole)
	case *holepunch.EndHolePunchEvt:
		log.Info("holepunch: attempt ended", "peer", p, "success", e.Success, "elapsed", e.EllapsedTime, "err", e.Error)
		n.mu.Lock()
		if r := n.rel[p]; r != nil {
			r.quicServer = false
		}
		n.mu.Unlock()
		if e.Success {
			return
		}
		n.mu.Lock()
		r := n.rel[p]
		var failed *evPunchFailed
		if r != nil {
			r.lastError = e.Error
			// The receiver runs one attempt per CONNECT; a go initiator
			// makes three, a Rust one (libp2p-dcutr) three as well.
			if !r.inbound && !r.direct && !r.failed && r.attempts+r.protocolErrors >= goMaxAttempts && len(n.directConns[p]) == 0 {
				r.failed = true
				failed = &evPunchFailed{Event: "punch_failed", Peer: p.String(),
					Error: oneLine(e.Error), Attempts: r.attempts}
			}
		}
		n.mu.Unlock()
		if failed != nil {
			n.punchFailed(*failed)
		}
	case *holepunch.ProtocolErrorEvt:
		log.Warn("holepunch: protocol error", "peer", p, "err", e.Error)
		n.mu.Lock()
		r := n.rel[p]
		var failed *evPunchFailed
		if r != nil && !r.inbound {
			// On the receiver side a failed CONNECT exchange ends one of the
			// initiator's attempts, not the punch: go-libp2p keeps the relayed
			// connection and answers the initiator's next CONNECT. A Rust
			// initiator's stream is reset right after its SYNC (libp2p-dcutr
			// 0.15 drops it unclosed, protocol/outbound.rs), which go-yamux
			// reports before the buffered SYNC when the round trip is short
			// (docs/interop.md).
			r.protocolErrors++
			r.lastError = e.Error
		}
		final := r != nil && (r.inbound || r.attempts+r.protocolErrors >= goMaxAttempts)
		if final && !r.direct && !r.failed && len(n.directConns[p]) == 0 {
			r.failed = true
			failed = &evPunchFailed{Event: "punch_failed", Peer: p.String(), Error: oneLine(e.Error), Attempts: r.attempts}
		}
		n.mu.Unlock()
		if failed != nil {
			n.punchFailed(*failed)
		}
	default:
		log.Info("holepunch: event", "peer", p, "type", evt.Type)
	}
}

// HolePunchFinished is called by the initiator once it gives up or
// succeeds (holepuncher.go:171,179) and by the receiver after each attempt
// (svc.go:277).
func (t *hpTracer) HolePunchFinished(side string, attemptNum int, theirAddrs []ma.Multiaddr, ourAddrs []ma.Multiaddr, directConn network.ConnMultiaddrs) {
	n := (*peerNode)(t)
	ok := directConn != nil
	log.Info("holepunch: finished", "side", side, "attempts", attemptNum, "their_addrs", theirAddrs, "our_addrs", ourAddrs, "direct", ok)
	if side != "initiator" || ok {
		return
	}
	// The initiator gave up after all attempts. The tracer does not name
	// the peer here; find the relayed peer whose punch is still open.
	n.mu.Lock()
	var failed []evPunchFailed
	for p, r := range n.rel {
		if r.inbound && !r.direct && !r.failed && r.attempts >= goMaxAttempts && len(n.directConns[p]) == 0 {
			r.failed = true
			failed = append(failed, evPunchFailed{Event: "punch_failed", Peer: p.String(),
				Error: "all " + strconv.Itoa(int(r.attempts)) + " hole punch attempts failed; the last: " + oneLine(r.lastError), Attempts: r.attempts})
		}
	}
	n.mu.Unlock()
	for _, f := range failed {
		n.punchFailed(f)
	}
}

func (t *hpTracer) DirectDialFinished(success bool) {}
