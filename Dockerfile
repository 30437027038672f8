# hl7broker and, as a second target, nats-server at the version go.mod pins.
#   docker build -t hl7broker .                 # the broker (default target)
#   docker build --target nats -t hl7broker-nats .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags="-s -w" -o /out/hl7broker ./cmd/hl7broker \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/nats-server \
      github.com/nats-io/nats-server/v2

FROM gcr.io/distroless/static-debian12:nonroot AS nats
COPY --from=build /out/nats-server /usr/local/bin/nats-server
ENTRYPOINT ["/usr/local/bin/nats-server"]

FROM gcr.io/distroless/static-debian12:nonroot AS broker
COPY --from=build /out/hl7broker /usr/local/bin/hl7broker
EXPOSE 2575 2576 8080
ENTRYPOINT ["/usr/local/bin/hl7broker"]
CMD ["serve", "--config", "/etc/hl7broker/hl7broker.yaml"]
