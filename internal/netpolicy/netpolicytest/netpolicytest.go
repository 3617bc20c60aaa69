// Package netpolicytest answers DNS questions from a map, in memory, so a
// test can make a host name resolve to an address Steward must never
// connect to (a metadata service, a private range) without sending any
// DNS query, or any connection, off the machine.
package netpolicytest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
)

// DNS wire constants (RFC 1035).
const (
	typeA    = 1
	typeAAAA = 28
	classIN  = 1

	rcodeNameError = 3
)

// Resolver returns a resolver that answers A and AAAA questions for the
// names in hosts (lower case, without a trailing dot) and NXDOMAIN for any
// other name. Use it as net.Dialer.Resolver; it talks to no server.
func Resolver(hosts map[string][]netip.Addr) *net.Resolver {
	return &net.Resolver{
		PreferGo: true, // the Go resolver is the one that uses Dial
		Dial: func(context.Context, string, string) (net.Conn, error) {
			// A net.Pipe is not a PacketConn, so the resolver frames
			// messages as over TCP: a two-byte length, then the message.
			client, server := net.Pipe()
			go serve(server, hosts)
			return client, nil
		},
	}
}

func serve(conn net.Conn, hosts map[string][]netip.Addr) {
	defer conn.Close()
	for {
		var n uint16
		if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
			return
		}
		query := make([]byte, n)
		if _, err := io.ReadFull(conn, query); err != nil {
			return
		}
		reply := answer(query, hosts)
		if reply == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
		if _, err := conn.Write(append(out, reply...)); err != nil {
			return
		}
	}
}

// answer builds the reply to one query, or nil for a malformed one.
func answer(query []byte, hosts map[string][]netip.Addr) []byte {
	if len(query) < 12 {
		return nil
	}
	// The question: labels up to a zero byte, then type and class.
	var labels []string
	i := 12
	for {
		if i >= len(query) {
			return nil
		}
		l := int(query[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(query) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(query[i:i+l])))
		i += l
	}
	if i+4 > len(query) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(query[i:])
	question := query[12 : i+4]

	addrs, known := hosts[strings.Join(labels, ".")]
	var records [][]byte
	for _, a := range addrs {
		switch {
		case qtype == typeA && a.Is4():
			records = append(records, a.AsSlice())
		case qtype == typeAAAA && a.Is6():
			records = append(records, a.AsSlice())
		}
	}

	reply := make([]byte, 12, 12+len(question)+len(records)*28)
	copy(reply[0:2], query[0:2])           // ID
	reply[2] = 0x80 | 0x04 | query[2]&0x01 // response, authoritative, recursion desired as asked
	reply[3] = 0x80                        // recursion available
	if !known {
		reply[3] |= rcodeNameError
	}
	binary.BigEndian.PutUint16(reply[4:], 1)                    // questions
	binary.BigEndian.PutUint16(reply[6:], uint16(len(records))) // answers
	reply = append(reply, question...)
	for _, rdata := range records {
		reply = append(reply, 0xc0, 12) // the name: a pointer to the question's
		reply = binary.BigEndian.AppendUint16(reply, qtype)
		reply = binary.BigEndian.AppendUint16(reply, classIN)
		reply = binary.BigEndian.AppendUint32(reply, 60) // TTL
		reply = binary.BigEndian.AppendUint16(reply, uint16(len(rdata)))
		reply = append(reply, rdata...)
	}
	return reply
}

// Guard is a dialer's Control for tests of the outbound policy: put it
// under the policy (net.Dialer.ControlContext) and it records every address
// the policy let through and, unless Open, stops the connect, so a test can
// never reach beyond loopback even when the policy under test is wrong.
type Guard struct {
	// Open lets connects proceed after recording them (loopback tests).
	Open bool

	mu    sync.Mutex
	addrs []string
}

// Control records address and refuses the connect unless g.Open.
func (g *Guard) Control(_ context.Context, _, address string, _ syscall.RawConn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addrs = append(g.addrs, address)
	if !g.Open {
		return errors.New("test guard: the policy let " + address + " through")
	}
	return nil
}

// Seen lists the addresses that reached the guard, in order.
func (g *Guard) Seen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.addrs...)
}
