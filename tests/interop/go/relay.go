package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// runRelay serves circuit relay v2 (plus identify and ping, which every
// go-libp2p host runs) until it is killed.
func runRelay(a *relayArgs) error {
	priv, err := identity(a.seed)
	if err != nil {
		return err
	}
	external := []ma.Multiaddr(a.external)
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ListenAddrs(a.listen...),
		// A relay has no use for the circuit transport itself.
		libp2p.DisableRelay(),
		// The relay is the "public" side of the lab; nothing should make it
		// think otherwise (AutoNAT would only probe it).
		libp2p.ForceReachabilityPublic(),
		// Announce the --external-address ones if given, else the listen
		// addresses (as the Rust relay does). go-libp2p would announce the
		// listen addresses anyway; the factory just makes --external-address
		// replace them.
		libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			if len(external) > 0 {
				return external
			}
			return addrs
		}),
	}
	if a.noRateLimits {
		opts = append(opts, libp2p.ResourceManager(mustInfiniteRcmgr()))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return err
	}
	defer h.Close()

	res := relay.DefaultResources()
	res.MaxReservations = a.maxReservations
	res.MaxCircuits = a.maxCircuitsPerPeer
	res.ReservationTTL = time.Duration(a.reservationSecs) * time.Second
	res.Limit = &relay.RelayLimit{
		Duration: time.Duration(a.maxCircuitSecs) * time.Second,
		Data:     a.maxCircuitBytes,
	}
	if a.noRateLimits {
		res.MaxReservationsPerIP = 1_000_000
		res.MaxReservationsPerASN = 1_000_000
		res.MaxReservations = max(res.MaxReservations, 1_000_000)
	}
	_, err = relay.New(h, relay.WithResources(res),
		// go-libp2p's default (relay.go:81) is manet.IsPublicAddr, which drops
		// 203.0.113.0/24 and the other documentation ranges the lab uses as
		// "public", as well as loopback: the reservation would carry no
		// address. Keep every concrete address instead.
		relay.WithReservationAddressFilter(func(addr ma.Multiaddr) bool {
			return !manet.IsIPUnspecified(addr)
		}))
	if err != nil {
		return err
	}

	addrs, err := h.Network().InterfaceListenAddresses()
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		emit(evListening{Event: "listening", Address: withPeerID(addr, h.ID())})
	}
	emit(evReady{Event: "ready", PeerID: h.ID().String()})
	log.Info("relay serving", "peer_id", h.ID(), "announced", h.Addrs())

	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			log.Info("connection", "peer", c.RemotePeer(), "remote", c.RemoteMultiaddr(), "local", c.LocalMultiaddr(), "dir", c.Stat().Direction)
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			log.Info("disconnected", "peer", c.RemotePeer(), "remote", c.RemoteMultiaddr())
		},
	})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

func mustInfiniteRcmgr() network.ResourceManager {
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		panic(err)
	}
	return mgr
}
