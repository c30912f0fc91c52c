package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// runChart re-renders the chart of a JSON report.
func runChart(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	in := fs.String("json", "", "report written by run (and scale)")
	out := fs.String("svg", "", "SVG file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("chart needs -json and -svg")
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	return os.WriteFile(*out, renderSVG(&r), 0o644)
}

var palette = []string{"#2f6db3", "#e07b39", "#3a9a5b", "#b8435e", "#7a5cb8", "#8c8c3a"}

type svg struct{ b bytes.Buffer }

func (s *svg) f(format string, a ...any) { fmt.Fprintf(&s.b, format, a...) }
func (s *svg) text(x, y float64, size int, anchor, fill, t string) {
	s.f(`<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s">%s</text>`+"\n", x, y, size, anchor, fill, html.EscapeString(t))
}

// renderSVG draws the report: each hot path as a share of its physical limit, latency per
// operation of the mix, the mix's throughput over time, and (with a scale run) latency
// against the number of tenants and users.
func renderSVG(r *Report) []byte {
	const width = 980.0
	s := &svg{}
	y := 0.0
	body := &svg{}
	title := fmt.Sprintf("Gatehouse performance — %d cores (%s), %d GiB, %s, %s", r.Machine.Cores, r.Machine.CPU, r.Machine.MemGiB, r.Machine.Go, r.Started.Format("2006-01-02"))
	body.text(20, 28, 16, "start", "#111", title)
	y = 48

	// Panel 1: share of the physical limit.
	var ratios []Ratio
	for _, q := range r.Ratios {
		if q.Unit == "req/s" {
			ratios = append(ratios, q)
		}
	}
	if len(ratios) > 0 {
		body.text(20, y+16, 14, "start", "#111", "Throughput as a share of this machine's limit, measured in the same run")
		y += 28
		x0, x1 := 300.0, width-300
		for i, q := range ratios {
			yy := y + float64(i)*28
			body.text(x0-8, yy+15, 12, "end", "#222", q.Name)
			w := math.Min(q.Ratio, 1.2) / 1.2 * (x1 - x0)
			color := palette[0]
			if q.Met != nil && !*q.Met {
				color = palette[3]
			}
			body.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="18" fill="%s"/>`+"\n", x0, yy+2, w, color)
			body.text(x0+w+6, yy+15, 12, "start", "#222", fmt.Sprintf("%.0f%% (%.0f of %.0f/s), target %s", q.Ratio*100, q.Product, q.Limit, strings.TrimPrefix(q.Target, "none ")))
			if t, ok := targetValue(q.Target); ok {
				tx := x0 + t/1.2*(x1-x0)
				body.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#111" stroke-dasharray="3,2"/>`+"\n", tx, yy, tx, yy+22)
			}
		}
		y += float64(len(ratios))*28 + 16
	}

	// Panel 2: latency per operation (each isolated run and the mix), log scale.
	type row struct {
		label         string
		p50, p95, p99 float64
	}
	var rows []row
	for _, p := range r.Phases {
		for _, o := range p.Ops {
			if o.Requests > 0 {
				rows = append(rows, row{p.Name + " · " + o.Op, o.P50ms, o.P95ms, o.P99ms})
			}
		}
	}
	if len(rows) > 0 {
		body.text(20, y+16, 14, "start", "#111", "Latency per operation (ms, log scale): p50, p95, p99")
		y += 28
		x0, x1 := 330.0, width-180
		lo, hi := 0.05, 5000.0
		lx := func(v float64) float64 {
			v = math.Max(lo, math.Min(hi, v))
			return x0 + (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*(x1-x0)
		}
		for _, tick := range []float64{0.1, 1, 10, 100, 1000} {
			tx := lx(tick)
			body.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", tx, y, tx, y+float64(len(rows))*22)
			body.text(tx, y+float64(len(rows))*22+12, 10, "middle", "#555", fmt.Sprintf("%g", tick))
		}
		for i, rw := range rows {
			yy := y + float64(i)*22
			body.text(x0-8, yy+14, 11, "end", "#222", rw.label)
			for k, v := range []float64{rw.p99, rw.p95, rw.p50} {
				body.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="16" fill="%s" fill-opacity="%.2f"/>`+"\n", x0, yy+2, lx(v)-x0, palette[0], 0.35+0.3*float64(k))
			}
			body.text(lx(rw.p99)+4, yy+14, 10, "start", "#333", fmt.Sprintf("%.2f / %.2f / %.2f", rw.p50, rw.p95, rw.p99))
		}
		y += float64(len(rows))*22 + 30
	}

	// Panel 3: the mix over time.
	for _, p := range r.Phases {
		if p.Name != "mix" {
			continue
		}
		body.text(20, y+16, 14, "start", "#111", fmt.Sprintf("The mix over time: successful requests per second per operation (%d clients)", p.Concurrency))
		y += 28
		h := 160.0
		x0, x1 := 80.0, width-180
		peak := 1
		n := 0
		for _, o := range p.Ops {
			n = max(n, len(o.Timeline))
			for _, v := range o.Timeline {
				peak = max(peak, v)
			}
		}
		top := niceCeil(float64(peak))
		body.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x0, y+h, x1, y+h)
		body.text(x0-6, y+8, 10, "end", "#555", fmt.Sprintf("%.0f/s", top))
		body.text(x0-6, y+h, 10, "end", "#555", "0")
		body.text((x0+x1)/2, y+h+16, 10, "middle", "#555", "seconds")
		for k, o := range p.Ops {
			var pts []string
			for i, v := range o.Timeline {
				px := x0 + float64(i)/math.Max(1, float64(n-1))*(x1-x0)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, y+h-float64(v)/top*h))
			}
			c := palette[k%len(palette)]
			body.f(`<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`+"\n", c, strings.Join(pts, " "))
			body.f(`<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>`+"\n", x1+14, y+float64(k)*16, c)
			body.text(x1+28, y+float64(k)*16+9, 11, "start", "#222", fmt.Sprintf("%s %.0f/s", o.Op, o.RPS))
		}
		y += h + 36
	}

	// Panel 4: scale, each series relative to its value at the smallest size.
	if r.Scale != nil && len(r.Scale.Points) > 0 {
		body.text(20, y+16, 14, "start", "#111", "p50 latency as the data grows, relative to the smallest size (flat = 1.0; target ≤ 1.2)")
		y += 28
		h := 140.0
		for a, axis := range []string{"tenants", "users"} {
			var pts []ScalePoint
			for _, p := range r.Scale.Points {
				if p.Axis == axis {
					pts = append(pts, p)
				}
			}
			if len(pts) < 2 {
				continue
			}
			x0 := 60.0 + float64(a)*(width/2)
			x1 := x0 + width/2 - 240
			size := func(p ScalePoint) float64 {
				if axis == "tenants" {
					return float64(p.Tenants)
				}
				return float64(p.Users)
			}
			lo, hi := math.Log10(size(pts[0])), math.Log10(size(pts[len(pts)-1]))
			px := func(p ScalePoint) float64 { return x0 + (math.Log10(size(p))-lo)/math.Max(hi-lo, 1e-9)*(x1-x0) }
			const top = 2.0
			py := func(v float64) float64 { return y + h - math.Min(v, top)/top*h }
			body.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x0, y+h, x1, y+h)
			body.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x0, y, x0, y+h)
			for _, t := range []float64{0, 1, 2} {
				body.text(x0-4, py(t)+4, 9, "end", "#555", fmt.Sprintf("%g×", t))
			}
			body.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#b8435e" stroke-dasharray="4,3"/>`+"\n", x0, py(1.2), x1, py(1.2))
			for _, p := range pts {
				body.text(px(p), y+h+14, 9, "middle", "#555", fmt.Sprintf("%.0f", size(p)))
			}
			body.text((x0+x1)/2, y+h+28, 11, "middle", "#333", axis)
			series := []struct {
				name string
				v    func(ScalePoint) float64
			}{
				{"session check", func(p ScalePoint) float64 { return p.SessionCheck.P50ms }},
				{"uncached check", func(p ScalePoint) float64 {
					if p.SessionUncached == nil {
						return 0
					}
					return p.SessionUncached.P50ms
				}},
				{"login", func(p ScalePoint) float64 { return p.Login.P50ms }},
			}
			for k, se := range series {
				base := se.v(pts[0])
				if base <= 0 {
					continue
				}
				var line []string
				for _, p := range pts {
					line = append(line, fmt.Sprintf("%.1f,%.1f", px(p), py(se.v(p)/base)))
				}
				c := palette[k]
				body.f(`<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", c, strings.Join(line, " "))
				last := pts[len(pts)-1]
				body.text(x1+8, y+14+float64(k)*14, 10, "start", c, fmt.Sprintf("%s %.2f→%.2f ms", se.name, base, se.v(last)))
			}
		}
		y += h + 44
	}
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans, Arial, sans-serif">`+"\n", width, y+10, width, y+10)
	s.f(`<rect width="100%%" height="100%%" fill="#fff"/>` + "\n")
	s.b.Write(body.b.Bytes())
	s.f("</svg>\n")
	return s.b.Bytes()
}

func targetValue(t string) (float64, bool) {
	var v float64
	if _, err := fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(t), "≥ "), "%g", &v); err != nil || !strings.HasPrefix(t, "≥") {
		return 0, false
	}
	return v, true
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
