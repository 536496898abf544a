# risk-reset-bot container image: a static binary on distroless, run as
# nonroot. Build: docker build --build-arg VERSION=v1.2.3 -t risk-reset-bot .
# The tag below is kept in step with the go directive of go.mod (a test
# checks it).

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src

# Dependencies first, so code changes do not download modules again.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# CGO off: distroless/static has no libc. -trimpath keeps local paths out of
# the binary; -s -w drops debug tables.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
    -ldflags "-s -w -X risk-reset-bot/internal/buildinfo.Version=${VERSION}" \
    -o /out/risk-reset-bot ./cmd/risk-reset-bot

# distroless/static brings CA certificates and time zones, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="risk-reset-bot" \
      org.opencontainers.image.description="Reset Cloudflare Zero Trust risk scores from Slack, with approval" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/risk-reset-bot /risk-reset-bot
# Numeric, so that Kubernetes runAsNonRoot can verify it without a passwd lookup.
USER 65532:65532
# HTTP_ADDR: /healthz, /readyz, /metrics.
EXPOSE 8080
# No curl in the image: the binary probes its own /healthz on HTTP_ADDR.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/risk-reset-bot", "healthcheck"]
ENTRYPOINT ["/risk-reset-bot"]
