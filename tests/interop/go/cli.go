package main

// Command lines of the two modes. They mirror the flags of the Rust `relay`
// and `peer` binaries (crates/node/src/cli.rs): the flags the lab passes are
// accepted; the ones that only make sense for the Rust transport
// (--transport, --initiator-role, --candidates) are accepted and ignored.
// A bad flag gets a one-line error on stderr and exit code 2.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// exitUsage is the exit code for bad flags, as in the Rust binaries.
const exitUsage = 2

// usageError is a bad command line: one line on stderr, exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// addrList is a repeatable multiaddr flag.
type addrList []ma.Multiaddr

func (l *addrList) String() string {
	parts := make([]string, len(*l))
	for i, a := range *l {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

func (l *addrList) Set(text string) error {
	a, err := parseMultiaddr(text)
	if err != nil {
		return err
	}
	*l = append(*l, a)
	return nil
}

// seedFlag is an optional u8.
type seedFlag struct {
	set  bool
	seed byte
}

func (s *seedFlag) String() string {
	if !s.set {
		return ""
	}
	return strconv.Itoa(int(s.seed))
}

func (s *seedFlag) Set(text string) error {
	n, err := strconv.ParseUint(text, 10, 8)
	if err != nil {
		return fmt.Errorf("`%s` is no number from 0 to 255", text)
	}
	s.set, s.seed = true, byte(n)
	return nil
}

// portRange is START-END, as the Rust --punch-range.
type portRange struct{ start, end uint16 }

func (r *portRange) String() string { return fmt.Sprintf("%d-%d", r.start, r.end) }

func (r *portRange) Set(text string) error {
	lo, hi, ok := strings.Cut(text, "-")
	if !ok {
		return fmt.Errorf("`%s` is no port range: write START-END, e.g. 40000-40050", text)
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a == 0 || a > b {
		return fmt.Errorf("`%s` is no port range: write START-END with 1 <= START <= END <= 65535", text)
	}
	r.start, r.end = uint16(a), uint16(b)
	return nil
}

// ignored accepts any value of a Rust-only flag.
type ignored struct {
	name  string
	value string
}

func (f *ignored) String() string { return f.value }
func (f *ignored) Set(text string) error {
	f.value = text
	return nil
}

func parseMultiaddr(text string) (ma.Multiaddr, error) {
	if len(text) > 1024 {
		return nil, fmt.Errorf("`%.20s...` (%d characters) is too long for a multiaddr (at most 1024)", text, len(text))
	}
	a, err := ma.NewMultiaddr(text)
	if err != nil {
		return nil, fmt.Errorf("`%s` is no multiaddr (%v); write one like /ip4/198.51.100.1/udp/443/quic-v1", text, err)
	}
	return a, nil
}

// checkQuic refuses anything but /ip4|ip6/<ip>/udp/<port>/quic-v1[/p2p/<id>].
func checkQuic(a ma.Multiaddr) error {
	transport, _ := peer.SplitAddr(a)
	if transport == nil {
		return fmt.Errorf("`%s` is no /ip4|ip6/<ip>/udp/<port>/quic-v1 address", a)
	}
	var codes []int
	for _, c := range transport {
		codes = append(codes, c.Protocol().Code)
	}
	if len(codes) != 3 || (codes[0] != ma.P_IP4 && codes[0] != ma.P_IP6) || codes[1] != ma.P_UDP || codes[2] != ma.P_QUIC_V1 {
		return fmt.Errorf("`%s` is no /ip4|ip6/<ip>/udp/<port>/quic-v1 address", a)
	}
	return nil
}

type relayArgs struct {
	listen                 addrList
	external               addrList
	seed                   seedFlag
	noRateLimits           bool
	maxReservations        int
	maxReservationsPerPeer int
	reservationSecs        int
	maxCircuits            int
	maxCircuitsPerPeer     int
	maxCircuitSecs         int
	maxCircuitBytes        int64
}

type peerArgs struct {
	relay          ma.Multiaddr
	relayID        peer.ID
	listen         addrList
	punchRange     portRange
	announceIP     ma.Multiaddr // /ip4/<ip> or /ip6/<ip>, or nil
	seed           seedFlag
	dial           peer.ID
	persist        bool
	timeout        time.Duration
	holepunchAddrs string
	denyDirect     bool
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse runs fs over args; -h/--help prints the usage and exits 0.
func parse(fs *flag.FlagSet, args []string, about string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stdout, "%s\n\nUsage: %s [FLAGS]\n\n", about, fs.Name())
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		os.Exit(0)
	}
	if err != nil {
		return usagef("error: %s", strings.Replace(oneLine(err.Error()), ": -", ": --", 1))
	}
	if fs.NArg() > 0 {
		return usagef("error: unexpected argument '%s'", fs.Arg(0))
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func parseRelayArgs(args []string) (*relayArgs, error) {
	r := &relayArgs{}
	fs := newFlagSet("relay")
	fs.Var(&r.listen, "listen", "Address to listen on, e.g. /ip4/0.0.0.0/udp/443/quic-v1 (repeatable, required)")
	fs.Var(&r.external, "external-address", "Address to announce instead of the listen addresses (repeatable)")
	fs.Var(&r.seed, "secret-key-seed", "Derive the ed25519 identity from this byte (labs only)")
	fs.BoolVar(&r.noRateLimits, "no-rate-limits", false, "Turn off the per-IP and per-ASN reservation limits")
	fs.IntVar(&r.maxReservations, "max-reservations", 128, "Reservations held at once")
	fs.IntVar(&r.maxReservationsPerPeer, "max-reservations-per-peer", 4, "Accepted for compatibility (go-libp2p keeps one per peer)")
	fs.IntVar(&r.reservationSecs, "reservation-duration-secs", 3600, "Seconds a reservation lasts")
	fs.IntVar(&r.maxCircuits, "max-circuits", 16, "Accepted for compatibility (go-libp2p limits circuits per peer only)")
	fs.IntVar(&r.maxCircuitsPerPeer, "max-circuits-per-peer", 16, "Circuits one peer may have open at once")
	fs.IntVar(&r.maxCircuitSecs, "max-circuit-duration-secs", 120, "Seconds a circuit may stay open")
	fs.Int64Var(&r.maxCircuitBytes, "max-circuit-bytes", 1<<17, "Bytes a circuit may carry in each direction")
	// Rust-only; --allow-peer and --key-file would change what the relay
	// does, so they are refused (unknown flags) rather than ignored.
	fs.Var(&ignored{name: "metrics-address"}, "metrics-address", "Rust-only; accepted and ignored (no metrics)")
	if err := parse(fs, args, "relay: a go-libp2p circuit relay v2 server with identify and ping (punchport interop node)"); err != nil {
		return nil, err
	}
	if len(r.listen) == 0 {
		return nil, usagef("error: the following required arguments were not provided: --listen <MULTIADDR>")
	}
	for _, a := range r.listen {
		if err := checkQuic(a); err != nil {
			return nil, usagef("error: listen address: %v", err)
		}
	}
	for _, a := range r.external {
		if err := checkQuic(a); err != nil {
			return nil, usagef("error: external address: %v", err)
		}
	}
	for name, v := range map[string]int{"--max-reservations": r.maxReservations, "--max-reservations-per-peer": r.maxReservationsPerPeer,
		"--reservation-duration-secs": r.reservationSecs, "--max-circuits": r.maxCircuits,
		"--max-circuits-per-peer": r.maxCircuitsPerPeer, "--max-circuit-duration-secs": r.maxCircuitSecs} {
		if v < 1 || v > 1_000_000 {
			return nil, usagef("error: invalid value '%d' for '%s': not a count from 1 to 1000000", v, name)
		}
	}
	if r.maxCircuitBytes < 1 {
		return nil, usagef("error: invalid value '%d' for '--max-circuit-bytes'", r.maxCircuitBytes)
	}
	return r, nil
}

func parsePeerArgs(args []string) (*peerArgs, error) {
	p := &peerArgs{punchRange: portRange{40000, 40050}}
	var relay, dial, announce string
	var timeoutSecs int
	fs := newFlagSet("peer")
	fs.StringVar(&relay, "relay", "", "The relay, with its peer id: /ip4/<ip>/udp/<port>/quic-v1/p2p/<id> (required)")
	fs.Var(&p.listen, "listen", "An ordinary listen address, e.g. /ip4/0.0.0.0/udp/443/quic-v1 (repeatable)")
	fs.Var(&p.punchRange, "punch-range", "The UDP port range of the punch socket (the first free port is bound on 0.0.0.0)")
	fs.StringVar(&announce, "announce-ip", "", "Also advertise this IP with the punch port as a hole-punch candidate")
	fs.Var(&p.seed, "secret-key-seed", "Derive the ed25519 identity from this byte (labs only)")
	fs.StringVar(&dial, "dial", "", "Dial this peer through the relay and let go-libp2p's holepunch service punch; exit 0 once direct, 1 on failure")
	fs.BoolVar(&p.persist, "persist", false, "With --dial: never exit; punch again through a new relayed connection after a failure or a lost direct connection")
	fs.IntVar(&timeoutSecs, "timeout-secs", 30, "With --dial: give up after this many seconds")
	fs.StringVar(&p.holepunchAddrs, "holepunch-addrs", "all",
		"Addresses the holepunch service advertises in CONNECT: `stock` (go-libp2p's own policy: public IPs only; "+
			"nothing in documentation or private ranges), `observed` (observed by peers, plus --announce-ip), or "+
			"`all` (observed, --announce-ip and interface addresses; loopback only if the relay is on loopback)")
	fs.BoolVar(&p.denyDirect, "deny-direct", false, "For tests: refuse every direct connection to or from peers (the relay excepted), so that every punch fails")
	for _, name := range []string{"transport", "initiator-role", "candidates", "ping-interval-secs", "metrics-address", "key-file"} {
		fs.Var(&ignored{name: name}, name, "Rust-only; accepted and ignored (key-file and metrics-address are not supported)")
	}
	if err := parse(fs, args, "peer: a go-libp2p peer that reserves on a relay or dials through it and hole-punches (punchport interop node)"); err != nil {
		return nil, err
	}
	if relay == "" {
		return nil, usagef("error: the following required arguments were not provided: --relay <MULTIADDR>")
	}
	a, err := parseMultiaddr(relay)
	if err != nil {
		return nil, usagef("error: invalid value '%s' for '--relay <MULTIADDR>': %v", relay, err)
	}
	transport, id := peer.SplitAddr(a)
	if id == "" {
		return nil, usagef("error: the relay address `%s` has no /p2p/<peer id>; write /ip4/<ip>/udp/<port>/quic-v1/p2p/<id>", relay)
	}
	if err := checkQuic(a); err != nil {
		return nil, usagef("error: relay address: %v; write /ip4/<ip>/udp/<port>/quic-v1/p2p/<id>", err)
	}
	p.relay, p.relayID = transport, id
	for _, l := range p.listen {
		if err := checkQuic(l); err != nil {
			return nil, usagef("error: listen address: %v", err)
		}
		if _, id := peer.SplitAddr(l); id != "" {
			return nil, usagef("error: listen address `%s` must not name a peer", l)
		}
	}
	if dial != "" {
		if len(dial) > 128 {
			return nil, usagef("error: `%.20s...` is no peer id", dial)
		}
		p.dial, err = peer.Decode(dial)
		if err != nil {
			return nil, usagef("error: invalid value '%s' for '--dial <PEER_ID>': %v", dial, err)
		}
	}
	if p.persist && p.dial == "" {
		return nil, usagef("error: --persist requires --dial")
	}
	if timeoutSecs < 1 || timeoutSecs > 86400 {
		return nil, usagef("error: invalid value '%d' for '--timeout-secs': not in 1..=86400", timeoutSecs)
	}
	p.timeout = time.Duration(timeoutSecs) * time.Second
	if announce != "" {
		parsed := net.ParseIP(announce)
		if parsed == nil {
			return nil, usagef("error: invalid value '%s' for '--announce-ip <IP>': not an IP address", announce)
		}
		ip, err := manet.FromIP(parsed)
		if err != nil {
			return nil, usagef("error: invalid value '%s' for '--announce-ip <IP>': %v", announce, err)
		}
		p.announceIP = ip
	}
	switch p.holepunchAddrs {
	case "stock", "observed", "all":
	default:
		return nil, usagef("error: `%s` is no holepunch address policy: use `stock`, `observed` or `all`", p.holepunchAddrs)
	}
	return p, nil
}
