package cli

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/internal/redistest"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get returns the status and body of GET url with the API key, if any.
func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	const key = "metrics-e2e-key-0123456789"
	t.Run("on the API, behind its keys", func(t *testing.T) {
		cfg := testConfig(redistest.Mini(t))
		cfg.Engine.Auth.APIKeys = []string{key}
		base, _ := startServer(t, cfg)
		if code, _ := get(t, base+"/metrics", ""); code != http.StatusUnauthorized {
			t.Errorf("GET /metrics without a key: got %d, want 401", code)
		}
		if code, body := get(t, base+"/metrics", key); code != http.StatusOK || !strings.Contains(body, "boomerang_build_info") {
			t.Errorf("GET /metrics with a key: got %d, want 200 with boomerang_build_info", code)
		}
	})
	t.Run("on metrics_addr, without keys", func(t *testing.T) {
		cfg := testConfig(redistest.Mini(t))
		cfg.Engine.Auth.APIKeys = []string{key}
		cfg.MetricsAddr = freeAddr(t)
		cfg.Engine.SeparateMetrics = true // as loadConfig sets it
		base, stop := startServer(t, cfg)
		if code, body := get(t, "http://"+cfg.MetricsAddr+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "boomerang_queue_items") {
			t.Errorf("GET metrics_addr/metrics: got %d, want 200 with boomerang_queue_items", code)
		}
		if code, _ := get(t, base+"/metrics", key); code != http.StatusNotFound {
			t.Errorf("GET /metrics on addr: got %d, want 404", code)
		}
		stop()
		if _, err := net.Dial("tcp", cfg.MetricsAddr); err == nil {
			t.Error("metrics_addr still listens after the server stopped")
		}
	})
}

func TestLoadConfigMetricsAddr(t *testing.T) {
	c, err := loadConfig([]string{"--config", writeConfig(t, "metrics_addr: 127.0.0.1:9464\nmetrics_max_event_types: 7\n")}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "127.0.0.1:9464" || !c.Engine.SeparateMetrics || c.Engine.MetricsMaxEventTypes != 7 || c.Engine.DisableMetrics {
		t.Errorf("got metrics_addr %q, separate %v, max types %d, disabled %v; want the file's, separate",
			c.MetricsAddr, c.Engine.SeparateMetrics, c.Engine.MetricsMaxEventTypes, c.Engine.DisableMetrics)
	}
	c, err = loadConfig(nil, mapEnv(map[string]string{envKey("metrics_disabled"): "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Engine.DisableMetrics || c.Engine.SeparateMetrics {
		t.Errorf("from the environment: got disabled %v, separate %v; want disabled", c.Engine.DisableMetrics, c.Engine.SeparateMetrics)
	}
}
