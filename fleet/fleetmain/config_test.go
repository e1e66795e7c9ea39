package fleetmain

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "fleet.conf")
	if err := os.WriteFile(conf, []byte("# comment\netcd_servers=[\"http://file:1\",\"http://file:2\"]\nmetadata=\"region=us, disk = ssd,bad\"\nagent_ttl=10s\nengine_reconcile_interval=4.5\npublic_ip=1.1.1.1\nverify_units=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"FLEET_AGENT_TTL=20s", "FLEET_PUBLIC_IP=2.2.2.2", "FLEET_DISABLE_ENGINE=true"}
	cfg, version, warnings, err := LoadConfig([]string{"--config", conf, "--public_ip", "3.3.3.3"}, env, io.Discard)
	if err != nil || version {
		t.Fatal(err, version)
	}
	if !reflect.DeepEqual(cfg.EtcdServers, []string{"http://file:1", "http://file:2"}) {
		t.Errorf("servers from file: %v", cfg.EtcdServers)
	}
	if !reflect.DeepEqual(cfg.Metadata, map[string]string{"region": "us", "disk": "ssd"}) {
		t.Errorf("metadata: %v", cfg.Metadata)
	}
	if cfg.AgentTTL != 20*time.Second {
		t.Errorf("env must override file: agent_ttl=%v", cfg.AgentTTL)
	}
	if cfg.PublicIP != "3.3.3.3" {
		t.Errorf("flag must override env: public_ip=%v", cfg.PublicIP)
	}
	if cfg.EngineReconcileInterval != 4500*time.Millisecond || !cfg.DisableEngine {
		t.Errorf("interval/disable_engine: %+v", cfg)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "verify_units") {
		t.Errorf("warnings: %v", warnings)
	}
	def, _, _, err := LoadConfig([]string{"--config", filepath.Join(dir, "missing.conf")}, nil, io.Discard)
	if err == nil {
		t.Errorf("missing config file accepted: %+v", def)
	}
	if _, _, _, err := LoadConfig([]string{"--config", dir}, nil, io.Discard); err == nil {
		t.Error("directory accepted as config file")
	}
	if _, _, _, err := LoadConfig([]string{"extra"}, nil, io.Discard); err == nil || err.Error() != "fleetd takes no arguments. Did you mean to invoke fleetctl instead?" {
		t.Errorf("extra arg: %v", err)
	}
	if _, v, _, _ := LoadConfig([]string{"--version"}, nil, io.Discard); !v {
		t.Error("--version")
	}
	if _, _, _, err := LoadConfig([]string{"--agent_ttl", "bogus"}, nil, io.Discard); err == nil {
		t.Error("bad agent_ttl accepted")
	}
}

func TestConfigUnitManagerAndShutdownTimeout(t *testing.T) {
	cfg, _, _, err := LoadConfig(nil, []string{"FLEET_UNIT_MANAGER=memory", "FLEET_SHUTDOWN_TIMEOUT=2.5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UnitManager != "memory" || cfg.ShutdownTimeout != 2500*time.Millisecond {
		t.Errorf("unit_manager=%q shutdown_timeout=%v", cfg.UnitManager, cfg.ShutdownTimeout)
	}
	if def := DefaultConfig(); def.UnitManager != "systemd" || def.ShutdownTimeout != DefaultShutdownTimeout {
		t.Errorf("defaults: %q %v", def.UnitManager, def.ShutdownTimeout)
	}
	if _, _, _, err := LoadConfig([]string{"--unit_manager", "docker"}, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "expected systemd or memory") {
		t.Errorf("bad unit_manager: %v", err)
	}
}
