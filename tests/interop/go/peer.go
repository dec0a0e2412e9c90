package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const (
	// linger is how long a dialing peer keeps running after `direct`, so
	// that the other side completes its handshake (as the Rust peer).
	linger = 500 * time.Millisecond
	// lingerFailed is how long it keeps running after `punch_failed`.
	lingerFailed = 2 * time.Second
	// go-libp2p's initiator makes this many attempts (holepuncher.go maxRetries).
	goMaxAttempts = 3
	firstBackoff  = 2 * time.Second
	maxBackoff    = 30 * time.Second
)

// relayed is what a peer knows about the relayed connection to one peer.
type relayed struct {
	at         time.Time
	inbound    bool   // we accepted it: our holepunch service is the DCUtR initiator
	attempts   uint32 // holepunch attempts since the relayed connection
	direct     bool   // `direct` reported since (reset when the last direct connection closes)
	everDirect bool   // a direct connection opened since
	failed     bool   // `punch_failed` reported since
	lastError  string
	// protocolErrors: CONNECT exchanges that failed on the receiver side.
	// Each is one of the initiator's attempts: go-libp2p's receiver answers
	// every CONNECT the initiator sends (svc.go), and a Rust initiator
	// (libp2p-dcutr) sends another one after its dial failed.
	protocolErrors uint32
	// quicServer: a holepunch attempt in which go plays QUIC "server" is
	// under way (initiator attempts 1 and 2): the connection it ends with
	// was accepted at the QUIC level although go-libp2p calls it outbound.
	quicServer bool
}

type peerNode struct {
	args   *peerArgs
	h      host.Host
	ids    identify.IDService
	stop   context.CancelFunc
	result chan int // the exit code of a dialing peer, once

	mu          sync.Mutex
	rel         map[peer.ID]*relayed
	directConns map[peer.ID]map[network.Conn]struct{}
	observed    []ma.Multiaddr // our addresses as peers observed them (identify)
	resultSent  bool
	closing     bool // exiting: closing the host prints nothing more
	punchPorts  []uint16
}

func runPeer(a *peerArgs) int {
	priv, err := identity(a.seed)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	n := &peerNode{
		args:        a,
		result:      make(chan int, 1),
		rel:         make(map[peer.ID]*relayed),
		directConns: make(map[peer.ID]map[network.Conn]struct{}),
	}
	tracer := (*hpTracer)(n)
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		// A go user's QUIC-only node: the QUIC transport (quicreuse shares
		// the listening sockets for dialing), the relay client transport,
		// identify and ping (always on in go-libp2p).
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.EnableRelay(),
		// Listen below, one address at a time, so that a busy port of the
		// punch range can be skipped.
		libp2p.NoListenAddrs,
	}
	if manet.IsIPLoopback(a.relay) {
		// A loopback run: announce (identify) only loopback addresses, and
		// dial only loopback ones, so that no traffic goes to this
		// machine's other interfaces. go-libp2p dials every address it
		// knows of the peer when it punches (holepuncher.go:120), not only
		// the CONNECT ones, and a Rust peer announces all its interfaces.
		opts = append(opts,
			libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
				return slices.DeleteFunc(addrs, func(a ma.Multiaddr) bool {
					return !isCircuit(a) && !manet.IsIPLoopback(a)
				})
			}),
		)
	}
	if manet.IsIPLoopback(a.relay) || a.denyDirect {
		relayAddr = a.relay
		opts = append(opts, libp2p.ConnectionGater(gater{loopbackOnly: manet.IsIPLoopback(a.relay), denyDirect: a.denyDirect}))
	}
	if a.holepunchAddrs == "stock" {
		// The plain go-libp2p way. Its address source is
		// addrsManager.HolePunchAddrs, which keeps only manet.IsPublicAddr
		// addresses: in the lab (documentation ranges) and on loopback the
		// service never even registers its stream handler.
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithMetricsAndEventTracer(tracer, tracer)))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	defer h.Close()
	n.h = h
	// libp2p.New wraps its *basichost.BasicHost; both have IDService.
	bh, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		fmt.Fprintf(os.Stderr, "error: unexpected host type %T\n", h)
		return 1
	}
	n.ids = bh.IDService()

	h.Network().Notify(&network.NotifyBundle{ConnectedF: n.connected, DisconnectedF: n.disconnected})
	if err := n.watchIdentify(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	if err := n.listen(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	if a.holepunchAddrs != "stock" {
		// The same service EnableHolePunching builds (basic_host.go:265),
		// with our own address source instead of HolePunchAddrs: the
		// documented constructor, no patching.
		hps, err := holepunch.NewService(h, n.ids, n.holePunchAddrs, holepunch.WithMetricsAndEventTracer(tracer, tracer))
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			return 1
		}
		defer hps.Close()
	}
	log.Info("peer", "peer_id", h.ID(), "go_libp2p", GoLibp2pVersion, "holepunch_addrs", a.holepunchAddrs, "punch_ports", n.punchPorts)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n.stop = cancel
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	var timeout <-chan time.Time
	if a.dial != "" && !a.persist {
		timeout = time.After(a.timeout)
		go n.dialLoop(ctx)
	} else if a.dial != "" {
		go n.dialLoop(ctx)
	} else {
		go n.reserveLoop(ctx)
	}
	code := 1
	select {
	case code = <-n.result:
	case <-timeout:
		n.mu.Lock()
		n.resultSent = true
		n.mu.Unlock()
		emit(evTimeout{Event: "timeout"})
	case <-sig:
	}
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	return code
}

// listen binds the --listen addresses, then the first free port of the
// punch range on 0.0.0.0 (or :: for an IPv6 relay), and prints a
// `listening` line for each resulting address.
func (n *peerNode) listen() error {
	for _, addr := range n.args.listen {
		if err := n.h.Network().Listen(addr); err != nil {
			return fmt.Errorf("cannot listen on %s: %w", addr, err)
		}
	}
	unspecified := "/ip4/0.0.0.0"
	if _, err := n.args.relay.ValueForProtocol(ma.P_IP6); err == nil {
		unspecified = "/ip6/::"
	}
	var lastErr error
	bound := false
	for port := int(n.args.punchRange.start); port <= int(n.args.punchRange.end); port++ {
		addr := ma.StringCast(fmt.Sprintf("%s/udp/%d/quic-v1", unspecified, port))
		if err := n.h.Network().Listen(addr); err != nil {
			lastErr = err
			continue
		}
		n.punchPorts = append(n.punchPorts, uint16(port))
		bound = true
		break
	}
	if !bound {
		return fmt.Errorf("no free UDP port in the punch range %s: %v", n.args.punchRange.String(), lastErr)
	}
	addrs, err := n.h.Network().InterfaceListenAddresses()
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		if isCircuit(addr) {
			// The relay transport's bare /p2p-circuit listener; the circuit
			// address is printed once the reservation holds.
			continue
		}
		port := udpPort(addr)
		punch := port != nil && slices.Contains(n.punchPorts, *port)
		emit(evListening{Event: "listening", Address: withPeerID(addr, n.h.ID()), PunchSocket: punch})
	}
	return nil
}

// watchIdentify records the address each identified peer saw us at: the
// relay's observation is our NAT mapping, the candidate that matters.
func (n *peerNode) watchIdentify() error {
	sub, err := n.h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return err
	}
	go func() {
		for e := range sub.Out() {
			evt := e.(event.EvtPeerIdentificationCompleted)
			if evt.ObservedAddr == nil || isCircuit(evt.Conn.RemoteMultiaddr()) || isCircuit(evt.ObservedAddr) {
				continue
			}
			log.Info("observed", "by", evt.Peer, "observed_addr", evt.ObservedAddr, "local", evt.Conn.LocalMultiaddr(), "agent", evt.AgentVersion)
			n.mu.Lock()
			if !slices.ContainsFunc(n.observed, evt.ObservedAddr.Equal) {
				n.observed = append(n.observed, evt.ObservedAddr)
			}
			n.mu.Unlock()
		}
	}()
	return nil
}

// holePunchAddrs is the address source of our holepunch service (the
// `listenAddrs` argument of holepunch.NewService): what it puts into its
// CONNECT message, and, while empty, what keeps the service from handling
// /libp2p/dcutr at all (svc.go waitForPublicAddr).
func (n *peerNode) holePunchAddrs() []ma.Multiaddr {
	n.mu.Lock()
	out := slices.Clone(n.observed)
	n.mu.Unlock()
	if n.args.announceIP != nil {
		for _, port := range n.punchPorts {
			out = append(out, n.args.announceIP.Encapsulate(ma.StringCast(fmt.Sprintf("/udp/%d/quic-v1", port))))
		}
	}
	if n.args.holepunchAddrs == "all" {
		ifaces, _ := n.h.Network().InterfaceListenAddresses()
		out = append(out, ifaces...)
	}
	// On loopback (the relay is on 127.0.0.1) only loopback addresses;
	// elsewhere anything but loopback.
	loopbackRun := manet.IsIPLoopback(n.args.relay)
	out = slices.DeleteFunc(ma.Unique(out), func(a ma.Multiaddr) bool {
		return isCircuit(a) || manet.IsIPUnspecified(a) || manet.IsIP6LinkLocal(a) ||
			loopbackRun != manet.IsIPLoopback(a)
	})
	return out
}

func (n *peerNode) relayInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.args.relayID, Addrs: []ma.Multiaddr{n.args.relay}}
}

// connectRelay connects to the relay and waits for identify on that
// connection, so that our observed address is known before any circuit.
func (n *peerNode) connectRelay(ctx context.Context) error {
	if err := n.h.Connect(ctx, n.relayInfo()); err != nil {
		return err
	}
	conns := n.h.Network().ConnsToPeer(n.args.relayID)
	if len(conns) == 0 {
		return errors.New("the relay connection closed at once")
	}
	select {
	case <-n.ids.IdentifyWait(conns[0]):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// reserveLoop holds a reservation on the relay, renewing it before it
// expires and asking again (2 s, doubling up to 30 s) when refused.
func (n *peerNode) reserveLoop(ctx context.Context) {
	backoff := firstBackoff
	ready := false
	for ctx.Err() == nil {
		var rsvp *client.Reservation
		err := n.connectRelay(ctx)
		if err == nil {
			rsvp, err = client.Reserve(ctx, n.h, n.relayInfo())
		}
		if err != nil {
			log.Warn("reservation failed", "err", err, "backoff", backoff)
			emit(evReservationFailed{Event: "reservation_failed", Relay: n.args.relayID.String(), Error: oneLine(err.Error())})
			sleep(ctx, backoff)
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = firstBackoff
		log.Info("reservation accepted", "relay", n.args.relayID, "expires", rsvp.Expiration, "relay_addrs", rsvp.Addrs,
			"limit_duration", rsvp.LimitDuration, "limit_data", rsvp.LimitData)
		if !ready {
			ready = true
			// As the Rust peer's relay client listener: <relay>/p2p-circuit/p2p/<us>.
			circuit := n.args.relay.Encapsulate(ma.StringCast("/p2p/" + n.args.relayID.String() + "/p2p-circuit"))
			emit(evListening{Event: "listening", Address: withPeerID(circuit, n.h.ID())})
			emit(evReady{Event: "ready", PeerID: n.h.ID().String()})
		}
		// Renew at 3/4 of the lifetime, or at once if the relay goes away.
		renew := time.Until(rsvp.Expiration) * 3 / 4
		deadline := time.After(max(renew, time.Second))
		for waiting := true; waiting && ctx.Err() == nil; {
			select {
			case <-deadline:
				waiting = false
			case <-time.After(time.Second):
				if n.h.Network().Connectedness(n.args.relayID) != network.Connected {
					log.Warn("lost the relay; reconnecting")
					waiting = false
				}
			case <-ctx.Done():
			}
		}
	}
}

// dialLoop connects to the relay, prints `ready`, and dials the target
// through it; go-libp2p's holepunch service takes it from there (on the
// target's side, which sees an inbound relayed connection). With --persist
// it dials through the relay again whenever there is neither a relayed nor a
// direct connection and the backoff has passed.
func (n *peerNode) dialLoop(ctx context.Context) {
	backoff := firstBackoff
	for ctx.Err() == nil {
		if err := n.connectRelay(ctx); err != nil {
			log.Warn("cannot reach the relay; retrying", "err", err)
			sleep(ctx, firstBackoff)
			continue
		}
		break
	}
	emit(evReady{Event: "ready", PeerID: n.h.ID().String()})
	target := n.args.dial
	circuit := n.args.relay.Encapsulate(ma.StringCast("/p2p/" + n.args.relayID.String() + "/p2p-circuit"))
	for ctx.Err() == nil {
		if n.hasDirect(target) {
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		if !n.hasRelayed(target) {
			dctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "punch"), 15*time.Second)
			err := n.h.Connect(dctx, peer.AddrInfo{ID: target, Addrs: []ma.Multiaddr{circuit}})
			cancel()
			if err != nil {
				log.Warn("dialing through the relay failed; retrying", "err", err)
				if n.h.Network().Connectedness(n.args.relayID) != network.Connected {
					_ = n.connectRelay(ctx)
				}
				sleep(ctx, firstBackoff)
				continue
			}
			log.Info("dialed the target through the relay", "target", target)
		}
		if !n.args.persist {
			<-ctx.Done()
			return
		}
		// --persist: wait until the punch settles, then punch again through
		// a new relayed connection if it failed.
		sleep(ctx, time.Second)
		n.mu.Lock()
		r := n.rel[target]
		failed := r != nil && r.failed
		n.mu.Unlock()
		if failed && !n.hasDirect(target) {
			log.Info("punching again through a new relayed connection", "backoff", backoff)
			n.closeRelayed(target)
			sleep(ctx, backoff)
			backoff = min(backoff*2, maxBackoff)
		} else if n.hasDirect(target) {
			backoff = firstBackoff
		}
	}
}

func (n *peerNode) isClosing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closing
}

func (n *peerNode) hasDirect(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.directConns[p]) > 0
}

func (n *peerNode) hasRelayed(p peer.ID) bool {
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if isCircuit(c.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

func (n *peerNode) closeRelayed(p peer.ID) {
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if isCircuit(c.RemoteMultiaddr()) {
			_ = c.Close()
		}
	}
}

// connected is the swarm's notification of a new connection (called
// synchronously: it must not block).
func (n *peerNode) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.isClosing() {
		return
	}
	if p == n.args.relayID {
		log.Info("connected to the relay", "remote", c.RemoteMultiaddr(), "local", c.LocalMultiaddr())
		return
	}
	if isCircuit(c.RemoteMultiaddr()) {
		inbound := c.Stat().Direction == network.DirInbound
		n.mu.Lock()
		n.rel[p] = &relayed{at: time.Now(), inbound: inbound}
		n.mu.Unlock()
		role := "responder (dialed through the relay; go's holepunch handles the peer's CONNECT and dials as QUIC client)"
		if inbound {
			role = "initiator (accepted the relayed connection; go's holepunch sends CONNECT and, on attempts 1-2, plays QUIC server: random UDP packets, then accepts)"
		}
		log.Info("relayed connection", "peer", p, "remote", c.RemoteMultiaddr(), "dcutr_role", role)
		emit(evRelayed{Event: "relayed", Peer: p.String()})
		return
	}
	// `endpoint` is the QUIC role of this side in the connection, as the
	// Rust peer reports it: "dialer" if our QUIC Initial opened it. A
	// connection that go's holepunch "server" (random packets, then
	// accept) returns is DirOutbound in go-libp2p but was accepted by us.
	n.mu.Lock()
	r := n.rel[p]
	serverPunch := r != nil && r.quicServer
	n.mu.Unlock()
	outbound := c.Stat().Direction == network.DirOutbound
	endpoint := "listener"
	if outbound && !serverPunch {
		endpoint = "dialer"
	}
	local := udpPort(c.LocalMultiaddr())
	remote := c.RemoteMultiaddr().String()
	log.Info("direct connection", "peer", p, "endpoint", endpoint, "libp2p_direction", c.Stat().Direction.String(),
		"during_server_punch", serverPunch, "remote", remote, "local", c.LocalMultiaddr())
	n.mu.Lock()
	if n.directConns[p] == nil {
		n.directConns[p] = make(map[network.Conn]struct{})
	}
	n.directConns[p][c] = struct{}{}
	var direct *evDirect
	if r != nil {
		r.everDirect = true
	}
	if r != nil && !r.direct {
		r.direct = true
		direct = &evDirect{Event: "direct", Peer: p.String(), ElapsedMs: uint64(time.Since(r.at).Milliseconds()),
			RemoteAddress: remote, LocalPort: local, Attempts: r.attempts}
	}
	n.mu.Unlock()
	emit(evConnection{Event: "connection", Peer: p.String(), Endpoint: endpoint, RemoteAddress: remote, LocalPort: local})
	if direct != nil {
		emit(*direct)
		if p == n.args.dial && !n.args.persist {
			n.finish(0, linger)
		}
	}
}

func (n *peerNode) disconnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.isClosing() {
		return
	}
	if p == n.args.relayID {
		log.Warn("relay connection closed", "remote", c.RemoteMultiaddr())
		return
	}
	circuit := isCircuit(c.RemoteMultiaddr())
	emit(evDisconnected{Event: "disconnected", Peer: p.String(), Relayed: circuit, Cause: nil})
	n.mu.Lock()
	var failed *evPunchFailed
	if circuit {
		if r := n.rel[p]; r != nil && !r.everDirect && !r.failed && !n.stillRelayed(p, c) {
			r.failed = true
			failed = &evPunchFailed{Event: "punch_failed", Peer: p.String(),
				Error: "the relayed connection closed before a direct connection opened", Attempts: r.attempts}
		}
	} else if conns := n.directConns[p]; conns != nil {
		delete(conns, c)
		if len(conns) == 0 {
			delete(n.directConns, p)
			if r := n.rel[p]; r != nil {
				r.direct = false
			}
			if n.args.persist && p == n.args.dial {
				log.Info("lost the direct connection; punching again through the relay", "peer", p)
				go n.closeRelayed(p)
			}
		}
	}
	n.mu.Unlock()
	if failed != nil {
		n.punchFailed(*failed)
	}
}

// stillRelayed: another relayed connection to p is open besides c.
func (n *peerNode) stillRelayed(p peer.ID, c network.Conn) bool {
	for _, other := range n.h.Network().ConnsToPeer(p) {
		if other != c && isCircuit(other.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

func (n *peerNode) punchFailed(ev evPunchFailed) {
	log.Warn("hole punch failed", "peer", ev.Peer, "error", ev.Error, "attempts", ev.Attempts)
	emit(ev)
	if ev.Peer == n.args.dial.String() && !n.args.persist {
		n.finish(1, lingerFailed)
	}
}

// finish makes a dialing peer exit with code after wait, unless an exit is
// decided already (the first of direct / punch_failed / timeout wins).
func (n *peerNode) finish(code int, wait time.Duration) {
	n.mu.Lock()
	if n.resultSent {
		n.mu.Unlock()
		return
	}
	n.resultSent = true
	n.mu.Unlock()
	go func() {
		time.Sleep(wait)
		n.result <- code
	}()
}

func isCircuit(a ma.Multiaddr) bool {
	if a == nil {
		return false
	}
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// gater is the connection gater of a loopback run (dial only loopback:
// swarm_dial.go:549 applies InterceptAddrDial) and of --deny-direct (no
// direct connection in or out: a punch that cannot succeed).
type gater struct {
	loopbackOnly bool
	denyDirect   bool
}

func (g gater) InterceptPeerDial(peer.ID) bool { return true }
func (g gater) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool {
	if g.denyDirect && !isCircuit(a) && !g.isRelay(a) {
		return false
	}
	return !g.loopbackOnly || manet.IsIPLoopback(a)
}
func (g gater) InterceptAccept(c network.ConnMultiaddrs) bool {
	return !g.denyDirect || isCircuit(c.RemoteMultiaddr())
}
func (g gater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// relayAddr is the relay's transport address, which --deny-direct still dials.
var relayAddr ma.Multiaddr

func (g gater) isRelay(a ma.Multiaddr) bool { return relayAddr != nil && a.Equal(relayAddr) }
