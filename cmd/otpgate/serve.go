package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/admin"
	"github.com/otpgate/otpgate/live"
	"github.com/otpgate/otpgate/metrics"
	"github.com/otpgate/otpgate/policy"
	"github.com/otpgate/otpgate/radius"
	"github.com/otpgate/otpgate/secret"
	"github.com/otpgate/otpgate/store"
	"github.com/otpgate/otpgate/web"
)

func cmdServe(ctx context.Context, now func() time.Time, args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	configPath := fs.String("config", "", "configuration `FILE` (default: the embedded defaults)")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	s, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	logs := newLogWriter(stderr)
	defer logs.Close()
	return serve(ctx, s, now, newLogger(s, logs))
}

func newLogger(s *settings, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(s.logLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if s.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	if lw, ok := w.(*logWriter); ok {
		h = flushingHandler{h, lw}
	}
	return slog.New(h)
}

// serve runs the server until ctx is done, then drains requests in flight
// and closes the store.
func serve(ctx context.Context, s *settings, now func() time.Time, log *slog.Logger) error {
	senders, err := s.cfg.senders(log)
	if err != nil {
		return err
	}
	for _, w := range append(s.deliveryWarnings(), s.secretWarnings()...) {
		log.Warn(w)
	}
	// A start that fails before it is ready takes away the store and key
	// it made (the admin socket goes with its listener), so that the next
	// start, perhaps with a changed port, is a first start again.
	_, err = os.Stat(s.storePath)
	newStore := errors.Is(err, fs.ErrNotExist)
	_, err = os.Stat(s.keyFile)
	newKey := errors.Is(err, fs.ErrNotExist)
	ready := false
	db, key, err := openStoreWith(s, store.Options{Timeout: time.Second, Log: log, Now: now})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w (is another otpgate serve running with this store?)", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if ready {
			return
		}
		if newStore {
			os.Remove(s.storePath)
		}
		if newKey {
			os.Remove(s.keyFile)
		}
	}()
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	var m *metrics.Metrics
	var srv, acct, rsrv *radius.Server // the listeners, for their drop counters
	var engine *policy.Engine
	if s.httpListen != "" {
		m = metrics.New(metrics.Sources{
			Dropped: []func() map[string]uint64{func() map[string]uint64 { return srv.Dropped() }, func() map[string]uint64 { return acct.Dropped() },
				func() map[string]uint64 { return rsrv.Dropped() }},
			LiveChallenges:   func() int { return engine.Challenges() },
			Held:             func() int { return engine.Held() },
			RadSec:           func() int { return rsrv.TLSConnections() },
			AuditDropped:     db.AuditDropped,
			StoreUnavailable: db.Unavailable,
			SyncTimes:        db.SyncTimes,
		})
	}
	var observer policy.Observer
	if m != nil {
		observer = m
	}
	challenges, approvals, stopLive := liveState(db, key, now, log)
	defer stopLive()
	engine = policy.New(policy.Config{
		Store: db, Key: key, Tenants: s.tenants, Senders: senders, Now: now, Log: log,
		PublicURL: s.web.publicURL, Checkers: s.checkers(), Observer: observer,
		HoldLimits: s.holdLimits, MaxIO: s.maxIO, Challenges: challenges, Approvals: approvals,
	})
	engine.SetDisplayNames(s.displayNames)
	srv = &radius.Server{
		Handler:         radius.Decide(engine),
		Clients:         radius.NewClients(s.clients),
		MaxConcurrent:   s.maxConcurrent,
		DuplicateWindow: s.duplicateWindow,
		Now:             now,
		Log:             log,
	}
	// RadSec carries accounting on the same connections (RFC 6614 §2.3),
	// and clients mark a server dead that leaves it unanswered.
	rsrv = &radius.Server{
		Handler:         srv.Handler,
		Accounting:      radius.Account(engine),
		Clients:         radius.NewClients(s.clients),
		MaxConcurrent:   s.maxConcurrent,
		DuplicateWindow: s.duplicateWindow,
		Now:             now,
		Log:             log,

		TLSIdleTimeout:       s.radsec.idle,
		MaxTLSConns:          s.radsec.maxConns,
		MaxTLSConnsPerClient: s.radsec.maxPerClient,
	}
	radsec, err := listenRadSec(s.radsec)
	if err != nil {
		return err
	}
	defer radsec.close()
	var conns []net.PacketConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, addr := range s.listen {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	var acctConns []net.PacketConn
	for _, addr := range s.accountingListen {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("accounting listen on %s: %w", addr, err)
		}
		conns = append(conns, c)
		acctConns = append(acctConns, c)
	}
	acct = &radius.Server{
		Accounting:      radius.Account(engine),
		Clients:         radius.NewClients(s.clients),
		MaxConcurrent:   s.maxConcurrent,
		DuplicateWindow: s.duplicateWindow,
		Now:             now,
		Log:             log,
	}
	adminLn, err := admin.Listen(s.adminSocket)
	if err != nil {
		return err
	}
	defer adminLn.Close() // closed by admin.Serve once serving; closing removes the socket file
	svc := &admin.Service{DB: db, Key: key, Tenants: s.tenants, Issuer: s.issuer, Now: now, PublicURL: s.web.publicURL, Inviter: engine}
	svc.Reload = func() ([]policy.Tenant, string, error) {
		ns, err := loadConfig(s.path)
		if err != nil {
			log.Error("reload failed; the running configuration stays", "err", err)
			return nil, "", fmt.Errorf("reload failed; the running configuration stays:\n%w", err)
		}
		senders, err := ns.cfg.senders(log)
		if err != nil {
			log.Error("reload failed; the running configuration stays", "err", err)
			return nil, "", fmt.Errorf("reload failed; the running configuration stays: %w", err)
		}
		engine.Reload(ns.tenants, senders, ns.checkers())
		engine.SetDisplayNames(ns.displayNames)
		srv.SetClients(radius.NewClients(ns.clients))
		acct.SetClients(radius.NewClients(ns.clients))
		rsrv.SetClients(radius.NewClients(ns.clients))
		radsec.reload(ns.radsec)
		db.SetAuditKeep(ns.auditKeep)
		var b strings.Builder
		fmt.Fprintf(&b, "reloaded %s: %d client(s), %d tenant(s)\n", orDefault(s.path, "the embedded defaults"), len(ns.clients), len(ns.tenants))
		for _, w := range restartNeeded(s, ns) {
			fmt.Fprintf(&b, "note: %s changed; that takes a restart\n", w)
		}
		log.Info("configuration reloaded", "clients", len(ns.clients), "tenants", len(ns.tenants))
		return ns.tenants, b.String(), nil
	}
	var webLn net.Listener
	if s.web.listen != "" {
		if webLn, err = net.Listen("tcp", s.web.listen); err != nil {
			return fmt.Errorf("web listen on %s: %w", s.web.listen, err)
		}
		defer webLn.Close() // closed by its server's Shutdown once serving
	}
	var metricsLn net.Listener
	if m != nil {
		if metricsLn, err = net.Listen("tcp", s.httpListen); err != nil {
			return fmt.Errorf("http listen on %s (metrics; http.listen: \"\" turns them off): %w", s.httpListen, err)
		}
		defer metricsLn.Close()
	}

	var wg sync.WaitGroup
	wg.Go(func() { admin.Serve(ctx, adminLn, svc, log) })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if rep := svc.Do(admin.SignalActor(), admin.Request{Op: "reload"}); rep.Error == "" {
					log.Info("SIGHUP: " + strings.TrimSpace(rep.Output))
				}
			}
		}
	})
	db.SetAuditKeep(s.auditKeep) // the audit log's commits trim it as they go; prune takes what is left
	wg.Go(func() { prune(ctx, db, engine, s.tenants, now, log) })
	if len(conns) > 0 {
		name := s.cfg.Cluster.NodeName
		if name == "" {
			name = nodeName(conns[0].LocalAddr().String())
		}
		wg.Go(func() { heartbeat(ctx, db, name, s.path, now, log) })
	}
	for _, c := range conns {
		srv := srv
		if slices.Contains(acctConns, c) {
			srv = acct
		}
		wg.Go(func() {
			if err := srv.Serve(ctx, c); err != nil {
				log.Error("radius listener stopped", "addr", c.LocalAddr().String(), "err", err)
			}
		})
		if srv == acct {
			log.Info("accounting listening", "addr", c.LocalAddr().String())
		} else {
			log.Info("listening", "addr", c.LocalAddr().String())
		}
	}
	radsec.serve(ctx, &wg, rsrv, log)
	if m != nil {
		ln := metricsLn
		healthy := func() error {
			if err := db.Unavailable(); err != nil {
				return err
			}
			err := db.Update(func(tx *store.Tx) error { return tx.PutMeta("healthz", []byte(now().UTC().Format(time.RFC3339))) })
			if ferr := db.AuditFailing(); ferr != nil { // after the Update, which waited for the audit entries queued before it
				return ferr
			}
			return err
		}
		hs := &http.Server{Handler: m.Handler(healthy), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener stopped", "err", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
		})
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	if webLn != nil {
		pages := &web.Server{Engine: engine, Tenant: s.web.tenant, FirstFactor: s.web.password, TrustedProxies: s.web.trustedProxies, Now: now, Log: log,
			Self: engine, Issuer: s.issuer, DisplayName: engine.DisplayName, Zone: engine.TimeZone, Key: key}
		if c, ok := challenges.(*live.Cluster); ok {
			pages.Sessions = c // in etcd: any node serves any request of a browser
		}
		hs := &http.Server{Handler: recoverHTTP(pages.Handler(), log), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		wg.Go(func() {
			var err error
			if s.web.cert != "" {
				err = hs.ServeTLS(webLn, s.web.cert, s.web.key)
			} else {
				err = hs.Serve(webLn)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("web listener stopped", "err", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
		})
		log.Info("web listening", "addr", webLn.Addr().String(), "public_url", s.web.publicURL)
	}
	ready = true
	log.Info("otpgate ready", "store", s.storePath, "admin_socket", s.adminSocket, "clients", len(s.clients), "tenants", len(s.tenants))
	<-ctx.Done()
	log.Info("shutting down: draining requests in flight")
	engine.StopHolds()
	wg.Wait()
	log.Info("stopped")
	return nil
}

// restartNeeded lists the settings a reload cannot change.
func restartNeeded(cur, next *settings) []string {
	var out []string
	same := func(a, b []string) bool { return strings.Join(a, " ") == strings.Join(b, " ") }
	if !same(cur.listen, next.listen) {
		out = append(out, "radius.listen")
	}
	if !same(cur.accountingListen, next.accountingListen) {
		out = append(out, "radius.accounting_listen")
	}
	if !same(cur.radsec.listen, next.radsec.listen) || cur.radsec.idle != next.radsec.idle ||
		cur.radsec.maxConns != next.radsec.maxConns || cur.radsec.maxPerClient != next.radsec.maxPerClient {
		out = append(out, "radius.tls_listen, tls_idle_timeout or tls_max_connections*")
	}
	if cur.maxConcurrent != next.maxConcurrent || cur.maxIO != next.maxIO || cur.holdLimits != next.holdLimits {
		out = append(out, "radius.max_concurrent, max_concurrent_io or max_held*")
	}
	if cur.storePath != next.storePath || cur.keyFile != next.keyFile || (cur.etcd == nil) != (next.etcd == nil) ||
		cur.etcd != nil && (strings.Join(cur.etcd.Endpoints, " ") != strings.Join(next.etcd.Endpoints, " ") || cur.etcd.Prefix != next.etcd.Prefix) {
		out = append(out, "store")
	}
	if cur.adminSocket != next.adminSocket {
		out = append(out, "admin.socket")
	}
	if cur.web.listen != next.web.listen || cur.web.publicURL != next.web.publicURL || cur.web.cert != next.web.cert ||
		cur.web.password != next.web.password || cur.web.tenant != next.web.tenant {
		out = append(out, "web")
	}
	if cur.logLevel != next.logLevel || cur.logFormat != next.logFormat {
		out = append(out, "log")
	}
	return out
}

// pruneSteps removes the used TOTP steps no code can reach any more, in
// transactions of a bounded size.
func pruneSteps(db *store.DB, now time.Time, log *slog.Logger) {
	total, err := inBatches(store.MaxPrunedSteps, func() (int, error) { return db.PruneSteps(now) })
	if err != nil {
		log.Error("prune used TOTP steps", "err", err)
		return
	}
	if total > 0 {
		log.Debug("pruned used TOTP steps", "steps", total)
	}
}

// pruneAudit removes audit entries older than keep (0: keeps all), in
// transactions of a bounded size so that requests are not held up.
func pruneAudit(db *store.DB, now time.Time, keep time.Duration, log *slog.Logger) {
	if keep <= 0 {
		return
	}
	total, err := inBatches(store.MaxPrunedAudit, func() (int, error) { return db.PruneAudit(now.Add(-keep)) })
	if err != nil {
		log.Error("prune audit log", "err", err)
		return
	}
	if total > 0 {
		log.Info("pruned audit log", "entries", total, "keep", keep.String())
	}
}

// inBatches calls prune, which removes at most most records in one
// transaction, until it removes fewer or fails, and returns how many it
// removed in all.
func inBatches(most int, prune func() (int, error)) (int, error) {
	total := 0
	for {
		n, err := prune()
		total += n
		if err != nil || n < most {
			return total, err
		}
	}
}

// checkers are the password checkers of the first factors configured.
func (s *settings) checkers() map[string]policy.PasswordChecker {
	m := map[string]policy.PasswordChecker{}
	if s.upstream != nil {
		m[policy.FirstFactorRADIUS] = s.upstream
	}
	if s.directory != nil {
		m[policy.FirstFactorLDAP] = s.directory
	}
	return m
}

// prune forgets expired challenges and removes stale proven IPs, old send
// records and audit entries past their retention once a minute.
// The audit log's retention is the store's (SetAuditKeep), which a
// reload changes.
func prune(ctx context.Context, db *store.DB, engine *policy.Engine, tenants []policy.Tenant, clock func() time.Time, log *slog.Logger) {
	var longest time.Duration
	for _, t := range tenants {
		longest = max(longest, t.ReconnectWindow)
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			safely(log, "prune", func() {
				now := clock()
				pruneAudit(db, now, db.AuditKeep(), log)
				if n := engine.PruneChallenges(); n > 0 {
					log.Debug("forgot expired challenges", "challenges", n)
				}
				if n, err := db.Prune(now, now.Add(-longest)); err != nil {
					log.Error("prune store", "err", err)
				} else if n > 0 {
					log.Debug("pruned store", "records", n)
				}
				pruneSteps(db, now, log)
			})
		}
	}
}

// openStore opens the store and the key that seals its secrets. The key is
// made on first use; a store whose secrets were sealed with another key,
// or whose key file is gone, is refused rather than silently re-keyed; so
// is an empty store file beside a key file: a store lost, not a new one.
func openStore(s *settings, timeout time.Duration) (*store.DB, *secret.Key, error) {
	return openStoreWith(s, store.Options{Timeout: timeout})
}

func openStoreWith(s *settings, opts store.Options) (*store.DB, *secret.Key, error) {
	if s.etcd != nil {
		opts.Etcd, opts.Node = s.etcd, s.nodeName
	}
	if fi, err := os.Stat(s.storePath); err == nil && fi.Size() == 0 {
		if _, err := os.Stat(s.keyFile); err == nil {
			return nil, nil, fmt.Errorf("store %s is empty, but its key file %s exists: the store was lost, not new; restore it from a copy made by otpgate backup (to start afresh with no users, move the key file away)", s.storePath, s.keyFile)
		}
	}
	db, err := store.Open(s.storePath, opts)
	if errors.Is(err, fs.ErrPermission) {
		return nil, nil, fmt.Errorf("open store: %s", permissionText(s.storePath, err))
	}
	if err != nil {
		return nil, nil, err
	}
	key, err := loadKey(db, s.keyFile)
	if errors.Is(err, fs.ErrPermission) {
		err = fmt.Errorf("open key file: %s", permissionText(s.keyFile, err))
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, key, nil
}

func loadKey(db *store.DB, path string) (*secret.Key, error) {
	var stored string
	if err := db.View(func(tx *store.Tx) error { stored = string(tx.Meta("key_id")); return nil }); err != nil {
		return nil, err
	}
	key, err := secret.Load(path)
	switch {
	case errors.Is(err, secret.ErrNoKey) && stored == "":
		if key, err = secret.Create(path, nil); err != nil {
			return nil, err
		}
	case errors.Is(err, secret.ErrNoKey):
		return nil, fmt.Errorf("key file %s is missing, and the store %s was sealed with key %s: restore the key file from your backup%s", path, db.Where(), stored, sameKey(db))
	case err != nil:
		return nil, err
	case stored != "" && stored != key.ID():
		return nil, fmt.Errorf("key file %s holds key %s, but the store %s was sealed with key %s%s", path, key.ID(), db.Where(), stored, sameKey(db))
	}
	if stored == "" {
		// The first node of a cluster to start records its key; one
		// starting at the same moment with another key is refused here.
		return key, db.Update(func(tx *store.Tx) error {
			if cur := string(tx.Meta("key_id")); cur != "" && cur != key.ID() {
				return fmt.Errorf("key file %s holds key %s, but the store %s was sealed with key %s%s", path, key.ID(), db.Where(), cur, sameKey(db))
			}
			return tx.PutMeta("key_id", []byte(key.ID()))
		})
	}
	return key, nil
}

// sameKey says, for a cluster, that every node needs the same key.
func sameKey(db *store.DB) string {
	if db.Path() == db.Where() {
		return ""
	}
	return ": every node of a cluster uses the same key file; copy it from a node that works"
}
