package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// runBareServer is the bare handler in a process of its own (the `bare-server` command):
// it reads the tokens from stdin, one per line, until an empty line, prints its URL and
// serves until stdin closes. Gatehouse runs as a separate process from the load generator,
// so this is the like-for-like limit: the same client, the same loopback, a separate
// server process with nothing but a map lookup and the JSON.
func runBareServer(in io.Reader, out io.Writer) error {
	tokens := map[string]bool{}
	answers := map[string][]byte{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			break
		}
		// "answer PATH BASE64-BODY" sets the body of an OpenID Provider path.
		if rest, ok := strings.CutPrefix(line, "answer "); ok {
			path, b64, _ := strings.Cut(rest, " ")
			body, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || !strings.HasPrefix(path, "/") {
				return fmt.Errorf("bare-server: bad answer line for %q", path)
			}
			answers[path] = body
			continue
		}
		tokens[line] = true
	}
	if len(tokens) == 0 {
		return errors.New("bare-server: no tokens on stdin")
	}
	u, stop, err := startBare(tokens, answers)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintln(out, u)
	_, _ = io.Copy(io.Discard, in) // until the parent closes stdin (or exits)
	return nil
}

// startBareProcess runs `gatehouse-load bare-server` as a child process.
func startBareProcess(ctx context.Context, tokens map[string]bool) (string, func(), error) {
	return startBareProcessWith(ctx, tokens, nil)
}

// startBareProcessWith is startBareProcess that also answers the paths of answers (see
// startBare).
func startBareProcessWith(ctx context.Context, tokens map[string]bool, answers map[string][]byte) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, self, "bare-server")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var b strings.Builder
	for path, body := range answers {
		b.WriteString("answer " + path + " " + base64.StdEncoding.EncodeToString(body) + "\n")
	}
	for t := range tokens {
		b.WriteString(t + "\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(stdin, b.String()); err != nil {
		stop()
		return "", nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("bare-server did not start: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}
