package cli

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logWriter buffers log output and flushes it every 100 ms (and when 32 KiB are waiting),
// so a busy server does not pay one write system call per access-log line. At most the
// last 100 ms of lines are lost if the process is killed; Close flushes on every normal
// exit, including SIGTERM and SIGINT.
type logWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.flush()
			case <-l.stop:
				l.flush()
				return
			}
		}
	}()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if err == nil && l.w.Buffered() >= 32<<10 {
		err = l.w.Flush()
	}
	return n, err
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.w.Flush()
}

// Close flushes and stops the background flusher.
func (l *logWriter) Close() {
	close(l.stop)
	<-l.done
}
