package domainverify

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

const (
	testTTL        = 60
	maxTXTChunkLen = 255 // a TXT character-string holds at most 255 bytes
)

// Server is a real DNS server on loopback (UDP) for tests and `gatehouse dev`. It answers
// TXT, A and AAAA queries from in-memory maps and NXDOMAIN for unknown names. Point a Verifier at
// it with New(s.Addr, timeout).
type Server struct {
	// Addr is the "127.0.0.1:port" the server listens on.
	Addr string

	srv  *dns.Server
	done chan error // receives the serve loop's result

	mu      sync.RWMutex
	records map[string][][]string   // canonical FQDN → TXT records → raw character-strings
	addrs   map[string][]netip.Addr // canonical FQDN → A and AAAA records

	closeOnce sync.Once
	closeErr  error
}

// StartServer listens on 127.0.0.1:0 (UDP) and serves until Close. Addr is valid as soon
// as it returns.
func StartServer() (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("domainverify: listen for test DNS server: %w", err)
	}
	s := &Server{
		Addr:    pc.LocalAddr().String(),
		done:    make(chan error, 1),
		records: make(map[string][][]string),
		addrs:   make(map[string][]netip.Addr),
	}
	started := make(chan struct{})
	s.srv = &dns.Server{
		PacketConn:        pc,
		Handler:           dns.HandlerFunc(s.serveDNS),
		NotifyStartedFunc: func() { close(started) },
	}
	go func() { s.done <- s.srv.ActivateAndServe() }()

	// Wait until the server counts as started, so that Close can always shut it down.
	select {
	case <-started:
		return s, nil
	case err := <-s.done:
		pc.Close()
		return nil, fmt.Errorf("domainverify: start test DNS server: %w", err)
	}
}

// SetTXT replaces the TXT records at name (without trailing dot; case-insensitive) with
// one record per value. Values longer than 255 bytes are split into several
// character-strings, as a DNS provider would. With no values the name exists but has no
// TXT records (NOERROR, empty answer). Safe for concurrent use.
func (s *Server) SetTXT(name string, values ...string) {
	records := make([][]string, 0, len(values))
	for _, v := range values {
		records = append(records, splitTXT(v))
	}
	s.setRecords(name, records)
}

// setRecords stores TXT records given as explicit character-strings.
func (s *Server) setRecords(name string, records [][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.CanonicalName(name)] = records
}

// SetAddrs replaces the A and AAAA records at name (without trailing dot; case-insensitive)
// with addrs (IPv4 ones answer A queries, IPv6 ones AAAA). Safe for concurrent use.
func (s *Server) SetAddrs(name string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs[dns.CanonicalName(name)] = addrs
}

// Resolver returns a resolver that asks this server, whatever the system's configuration
// names (for clients that take a *net.Resolver).
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr)
	}}
}

// Close stops the server and releases its socket. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if err := s.srv.Shutdown(); err != nil {
			s.closeErr = fmt.Errorf("domainverify: stop test DNS server: %w", err)
			return
		}
		if err := <-s.done; err != nil {
			s.closeErr = fmt.Errorf("domainverify: test DNS server: %w", err)
		}
	})
	return s.closeErr
}

// serveDNS answers one query. UDP answers larger than the client can receive (512 bytes,
// or its EDNS0 buffer size) are truncated with the TC bit set, like a real server.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	if len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(resp)
		return
	}
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true

	q := req.Question[0]
	s.mu.RLock()
	records, ok := s.records[dns.CanonicalName(q.Name)]
	addrs, hasAddrs := s.addrs[dns.CanonicalName(q.Name)]
	s.mu.RUnlock()
	switch {
	case !ok && !hasAddrs:
		resp.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY:
		for _, strs := range records {
			resp.Answer = append(resp.Answer, txtRR(q.Name, strs))
		}
	case q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA:
		resp.Answer = append(resp.Answer, addrRRs(q.Name, q.Qtype, addrs)...)
	}

	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		resp.SetEdns0(opt.UDPSize(), false)
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

// addrRRs builds the A (or AAAA) records at name from the addresses of that family.
func addrRRs(name string, qtype uint16, addrs []netip.Addr) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: testTTL}
		switch {
		case qtype == dns.TypeA && a.Is4():
			out = append(out, &dns.A{Hdr: hdr, A: net.IP(a.AsSlice())})
		case qtype == dns.TypeAAAA && a.Is6():
			out = append(out, &dns.AAAA{Hdr: hdr, AAAA: net.IP(a.AsSlice())})
		}
	}
	return out
}

// txtRR builds a TXT record at name from raw character-strings.
func txtRR(name string, strs []string) *dns.TXT {
	escaped := make([]string, len(strs))
	for i, str := range strs {
		escaped[i] = escapeTXT(str)
	}
	return &dns.TXT{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: testTTL},
		Txt: escaped,
	}
}

// splitTXT cuts v into character-strings of at most 255 bytes.
func splitTXT(v string) []string {
	if v == "" {
		return []string{""}
	}
	var strs []string
	for len(v) > maxTXTChunkLen {
		strs = append(strs, v[:maxTXTChunkLen])
		v = v[maxTXTChunkLen:]
	}
	return append(strs, v)
}
