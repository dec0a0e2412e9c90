// Command punchport-go-node is a go-libp2p test node that the punchport NAT
// lab can run in place of the Rust `relay` and `peer` binaries: same flags
// (the subset the lab uses), same JSON lines on stdout (one object per line,
// parsed by crates/node/src/event.rs), logs on stderr.
//
// Pinned: github.com/libp2p/go-libp2p v0.52.0 (with quic-go v0.64.1), built
// with Go 1.26. See FINDINGS.md for what that version does when it punches.
//
//	punchport-go-node relay --listen /ip4/127.0.0.1/udp/4001/quic-v1 --secret-key-seed 1
//	punchport-go-node peer --relay <addr>/p2p/<id> [--dial <peer id>]
//
// The mode is the first argument, or the program's name when it is invoked
// through a link called `relay` or `peer`.
package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// GoLibp2pVersion is the go-libp2p release this node is built against (go.mod).
const GoLibp2pVersion = "v0.52.0"

var log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))

func logLevel() slog.Level {
	switch strings.ToLower(os.Getenv("PUNCHPORT_GO_LOG")) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func main() {
	mode, args := modeAndArgs(os.Args)
	var err error
	switch mode {
	case "relay":
		var a *relayArgs
		if a, err = parseRelayArgs(args); err == nil {
			err = runRelay(a)
		}
	case "peer":
		var a *peerArgs
		if a, err = parsePeerArgs(args); err == nil {
			os.Exit(runPeer(a))
		}
	case "version", "--version":
		fmt.Printf("punchport-go-node (go-libp2p %s)\n", GoLibp2pVersion)
		return
	default:
		err = usagef("error: the first argument must be `relay` or `peer`, e.g. `%s relay --listen /ip4/127.0.0.1/udp/4001/quic-v1`", filepath.Base(os.Args[0]))
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, oneLine(ue.msg))
		os.Exit(exitUsage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %s\n", oneLine(err.Error()))
		os.Exit(1)
	}
}

func modeAndArgs(argv []string) (string, []string) {
	name := strings.TrimSuffix(filepath.Base(argv[0]), ".exe")
	switch {
	case name == "relay" || strings.HasSuffix(name, "-relay"):
		return "relay", argv[1:]
	case name == "peer" || strings.HasSuffix(name, "-peer"):
		return "peer", argv[1:]
	}
	if len(argv) < 2 {
		return "", nil
	}
	return argv[1], argv[2:]
}

// identity derives the ed25519 key whose secret is 32 bytes of seed, as the
// Rust nodes do (`Keypair::ed25519_from_bytes([seed; 32])`), so that
// `--secret-key-seed N` gives the same peer id in both languages. Without a
// seed the identity is new on every start.
func identity(seed seedFlag) (crypto.PrivKey, error) {
	if !seed.set {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		return priv, err
	}
	secret := make([]byte, ed25519.SeedSize)
	for i := range secret {
		secret[i] = seed.seed
	}
	return crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(secret))
}
