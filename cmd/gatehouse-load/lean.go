package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
)

// The lean client: the session check as a C load generator such as wrk sends it. Every
// request is prebuilt bytes written on a kept-alive HTTP/1.1 connection, one per worker;
// the answer is read with the least parsing that finds its end (status line, then
// Content-Length or chunked framing). No net/http on the client side, so what the client
// costs per request is a write, a read and a few byte comparisons: a heavier client
// flattens the comparison between Gatehouse and the bare handler (docs/performance.md).

// leanRequests builds GET /api/v1/session for every user, addressed to its tenant's host.
func leanRequests(w *workload) [][]byte {
	out := make([][]byte, 0, len(w.users))
	for _, u := range w.users {
		out = append(out, []byte("GET /api/v1/session HTTP/1.1\r\nHost: "+w.g.host(u.slug)+
			"\r\nAuthorization: Bearer "+*u.token.Load()+"\r\n\r\n"))
	}
	return out
}

// runLean runs conc workers for dur against addr (host:port), each on its own connection,
// sending a random one of reqs and reading the answer; a status other than 200 is an
// error. Its result has the same shape as runOps's, with the one operation opName.
func runLean(ctx context.Context, name, opName, addr string, reqs [][]byte, conc int, dur time.Duration) PhaseResult {
	secs := int(dur/time.Second) + 2
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	stats := make([]workerStats, conc)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			st := workerStats{lat: [][]time.Duration{make([]time.Duration, 0, 1<<16)}, errs: []map[string]int{{}}, timeline: [][]int{make([]int, secs)}}
			defer func() { stats[i] = st }()
			var c *leanConn
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			for ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = dialLean(ctx, addr); err != nil {
						if ctx.Err() == nil {
							st.errs[0][errKind(err)]++
							time.Sleep(10 * time.Millisecond)
						}
						continue
					}
				}
				t0 := time.Now()
				status, err := c.roundTrip(reqs[r.IntN(len(reqs))])
				if ctx.Err() != nil {
					return // cut off by the end of the run
				}
				if err != nil {
					st.errs[0][errKind(err)]++
					c.close()
					c = nil
					continue
				}
				if status != 200 {
					st.errs[0][strconv.Itoa(status)]++
					continue
				}
				st.lat[0] = append(st.lat[0], time.Since(t0))
				if s := int(time.Since(start) / time.Second); s < secs {
					st.timeline[0][s]++
				}
			}
		})
	}
	wg.Wait()
	return summarize(name, conc, []string{opName}, stats, time.Since(start))
}

type leanConn struct {
	nc net.Conn
	br *bufio.Reader
	// stop closes the connection when the run's context ends, so a blocked read returns.
	stop func() bool
}

func dialLean(ctx context.Context, addr string) (*leanConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &leanConn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}
	c.stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	return c, nil
}

func (c *leanConn) close() {
	c.stop()
	_ = c.nc.Close()
}

var (
	errLeanFraming = errors.New("lean client: response without Content-Length or chunked framing")
	headerCL       = []byte("content-length:")
	headerTE       = []byte("transfer-encoding:")
	headerConn     = []byte("connection:")
)

// roundTrip writes req and reads one response, returning its status. The body is skipped.
func (c *leanConn) roundTrip(req []byte) (int, error) {
	if _, err := c.nc.Write(req); err != nil {
		return 0, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("lean client: bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("lean client: bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // "\r\n": end of the header
			break
		}
		switch {
		case hasPrefixFold(line, headerCL):
			n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(headerCL):])))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("lean client: bad Content-Length %q", line)
			}
			length = n
		case hasPrefixFold(line, headerTE):
			chunked = bytes.Contains(bytes.ToLower(line), []byte("chunked"))
		case hasPrefixFold(line, headerConn):
			closing = bytes.Contains(bytes.ToLower(line), []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.skipChunks()
	case length >= 0:
		_, err = c.br.Discard(length)
	default:
		err = errLeanFraming
	}
	if err == nil && closing {
		err = errors.New("lean client: the server closed the connection")
	}
	return status, err
}

func (c *leanConn) skipChunks() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := bytes.TrimSpace(line)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("lean client: bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailer, up to the empty line
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

func hasPrefixFold(line, prefix []byte) bool {
	return len(line) >= len(prefix) && bytes.EqualFold(line[:len(prefix)], prefix)
}
