package broker

import (
	"context"
	"fmt"
	"strings"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/tracing"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// startTracing turns tracing on when the config asks: spans are batched
// and exported over OTLP/HTTP to tracing.endpoint. It returns what
// flushes and stops the export (a no-op when tracing is off).
func startTracing(cfg *config.Config, log zerolog.Logger) (stop func(context.Context) error, err error) {
	t := cfg.Tracing
	if !t.Enabled {
		return func(context.Context) error { return nil }, nil
	}
	endpoint := strings.TrimRight(t.Endpoint, "/")
	if !strings.HasSuffix(endpoint, "/v1/traces") {
		endpoint += "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	if len(t.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(t.Headers))
	}
	if t.CAFile != "" {
		tlsCfg, err := trusting("tracing.ca_file", cfg.TracingCAFile())
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", secret.Error(err))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", t.ServiceName))),
	)
	undo := tracing.Use(tp, t.ControlIDs)
	log.Info().Str("endpoint", secret.URL(endpoint)).Float64("sample_ratio", t.SampleRatio).Bool("control_ids", t.ControlIDs).
		Msg("tracing on: a trace per message, exported over OTLP/HTTP")
	return func(ctx context.Context) error {
		undo()
		return tp.Shutdown(ctx)
	}, nil
}
