package kit

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Observer gives every request a server span (W3C trace context honoured), the
// http.server.request.duration histogram, and one access-log line. It is a lean
// replacement for otelhttp on the hot path: attribute sets are built once per (method,
// route, status) instead of per request, and the response writer is wrapped once.
type Observer struct {
	logger   *slog.Logger
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	duration metric.Float64Histogram
	sets     sync.Map // setKey -> metric.MeasurementOption (an attribute set, built once)
}

// serverSpan is the span start option of every request, built once.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

type setKey struct {
	method, route string
	status        int
}

func NewObserver(logger *slog.Logger, tp trace.TracerProvider, mp metric.MeterProvider) *Observer {
	o := &Observer{logger: logger, tracer: tp.Tracer("gatehouse/http"),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	h, err := mp.Meter("gatehouse/http").Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP server requests."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err == nil {
		o.duration = h
	}
	return o
}

// attrs is the duration histogram's option for (method, route, status): the attribute set
// and the option wrapping it are built the first time and shared afterwards.
func (o *Observer) attrs(method, route string, status int) metric.MeasurementOption {
	k := setKey{method, route, status}
	if s, ok := o.sets.Load(k); ok {
		return s.(metric.MeasurementOption)
	}
	s := metric.WithAttributeSet(attribute.NewSet(semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(route),
		semconv.HTTPResponseStatusCode(status)))
	o.sets.Store(k, s)
	return s
}

func (o *Observer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		default:
			method = "_OTHER" // bounded cardinality
		}
		ctx := r.Context()
		// Only a request that carries trace context or baggage has anything to extract (the
		// propagators' lowercase header lookups cost an allocation each otherwise).
		if len(r.Header["Traceparent"]) > 0 || len(r.Header["Baggage"]) > 0 {
			ctx = o.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		ctx, span := o.tracer.Start(ctx, method, serverSpan...)
		// Share chi's routing context so the matched route pattern is known afterwards:
		// WithRequestInfo's context carries one; otherwise (a handler without it) a new one.
		rctx := chi.RouteContext(ctx)
		if rctx == nil {
			rctx = chi.NewRouteContext()
			ctx = context.WithValue(ctx, chi.RouteCtxKey, rctx)
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := rctx.RoutePattern()
		if route == "" || route == "/*" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		if span.IsRecording() {
			span.SetName(method + " " + route)
			span.SetAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.HTTPRoute(route),
				semconv.HTTPResponseStatusCode(rec.status), semconv.URLPath(r.URL.Path),
				attribute.String("gatehouse.request_id", Info(ctx).ID))
			if t, ok := TenantFrom(ctx); ok {
				span.SetAttributes(attribute.String("gatehouse.tenant_id", t.ID.String()))
			}
			if rec.status >= 500 {
				span.SetStatus(codes.Error, strconv.Itoa(rec.status))
			}
		}
		span.End()
		if o.duration != nil {
			o.duration.Record(ctx, elapsed.Seconds(), o.attrs(method, route, rec.status))
		}
		if o.logger.Enabled(ctx, slog.LevelInfo) {
			ri := Info(ctx)
			attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
				slog.Int("bytes", rec.bytes), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("request_id", ri.ID), slog.String("ip", ri.ClientIP.String()), slog.String("host", ri.Host)}
			if t, ok := TenantFrom(ctx); ok {
				attrs = append(attrs, slog.String("tenant", t.Slug))
			}
			if sc := span.SpanContext(); sc.IsValid() {
				attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
			}
			o.logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		}
	})
}
