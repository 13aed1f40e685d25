# Boomerang's image: a static binary on a distroless base, run as a
# non-root user, listening on 0.0.0.0:8080. compose.yaml runs it with Redis:
#
#	docker compose up
#
# Configure it with the environment (BOOMERANG_REDIS_URL, and every key of
# docs/configuration.md by the BOOMERANG_ rule) or a mounted file
# (BOOMERANG_CONFIG).

# The go line of go.mod: the image's toolchain must be at least that one.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a change of the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not in the build context (.dockerignore): --version says "devel".
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/boomerang ./cmd/boomerang

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/boomerang /usr/local/bin/boomerang
ENV BOOMERANG_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/boomerang"]
