package main

// The JSON lines, with exactly the fields of the matching variants of
// `NodeEvent` in crates/node/src/event.rs (`#[serde(tag = "event",
// rename_all = "snake_case")]`). Field order follows the Rust structs.

import (
	"encoding/json"
	"os"
	"strconv"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

type evListening struct {
	Event   string `json:"event"`
	Address string `json:"address"`
	// PunchSocket: the address is the punch socket's (a port of
	// --punch-range), as the Rust peer marks it.
	PunchSocket bool `json:"punch_socket"`
}

type evReady struct {
	Event  string `json:"event"`
	PeerID string `json:"peer_id"`
}

type evRelayed struct {
	Event string `json:"event"`
	Peer  string `json:"peer"`
}

type evConnection struct {
	Event         string  `json:"event"`
	Peer          string  `json:"peer"`
	Endpoint      string  `json:"endpoint"`
	RemoteAddress string  `json:"remote_address"`
	LocalPort     *uint16 `json:"local_port"`
}

type evDirect struct {
	Event         string  `json:"event"`
	Peer          string  `json:"peer"`
	ElapsedMs     uint64  `json:"elapsed_ms"`
	RemoteAddress string  `json:"remote_address"`
	LocalPort     *uint16 `json:"local_port"`
	Attempts      uint32  `json:"attempts"`
}

type evPunchFailed struct {
	Event    string `json:"event"`
	Peer     string `json:"peer"`
	Error    string `json:"error"`
	Attempts uint32 `json:"attempts"`
}

type evReservationFailed struct {
	Event string `json:"event"`
	Relay string `json:"relay"`
	Error string `json:"error"`
}

type evDisconnected struct {
	Event   string  `json:"event"`
	Peer    string  `json:"peer"`
	Relayed bool    `json:"relayed"`
	Cause   *string `json:"cause"`
}

type evTimeout struct {
	Event string `json:"event"`
}

var stdoutMu sync.Mutex

// emit prints one event as one line of JSON on stdout.
func emit(ev any) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// withPeerID is addr ending in /p2p/<id> (appended unless it has one).
func withPeerID(addr ma.Multiaddr, id peer.ID) string {
	if _, has := peer.SplitAddr(addr); has != "" {
		return addr.String()
	}
	return addr.String() + "/p2p/" + id.String()
}

// udpPort is the UDP port of addr, or nil.
func udpPort(addr ma.Multiaddr) *uint16 {
	if addr == nil {
		return nil
	}
	v, err := addr.ValueForProtocol(ma.P_UDP)
	if err != nil {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return nil
	}
	p := uint16(n)
	return &p
}
