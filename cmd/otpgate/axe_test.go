package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axePath is axe-core as npm installs it from testdata/axe/package.json
// (.ci/run runs npm ci there).
const axePath = "testdata/axe/node_modules/axe-core/axe.min.js"

// axe runs axe-core on the page the browser shows and fails the test on
// any serious or critical violation. Without axe-core installed it is
// skipped, except in CI.
func (w *rdgWorld) axe(t *testing.T, state string) {
	t.Helper()
	src, err := os.ReadFile(axePath)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core is missing (%v); .ci/run installs it with npm ci in cmd/otpgate/testdata/axe", err)
		}
		t.Logf("axe-core is not installed (cd cmd/otpgate/testdata/axe && npm ci): %s not checked", state)
		return
	}
	ctx, cancel := context.WithTimeout(w.browser, 30*time.Second)
	defer cancel()
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ HTML string }
	}
	// Evaluated through the DevTools protocol, which the page's CSP does not govern.
	run := string(src) + `;axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({ID: v.id, Impact: v.impact, Help: v.help, Nodes: v.nodes.map(n => ({HTML: n.html}))})))`
	// A click that submits a form returns before the next page is there:
	// wait for it, and run again if it came while axe ran.
	var found []violation
	for range 3 {
		if err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
			break
		}
		found, err = chromedp.Run(ctx, chromedp.Evaluate[[]violation](run, chromedp.EvalAwaitPromise))
		if err == nil || !strings.Contains(err.Error(), "navigated") {
			break
		}
	}
	if err != nil {
		t.Fatalf("axe-core on %s: %v", state, err)
	}
	for _, v := range found {
		if v.Impact == "serious" || v.Impact == "critical" {
			var nodes []string
			for _, n := range v.Nodes {
				nodes = append(nodes, n.HTML)
			}
			t.Errorf("axe-core, %s: %s (%s): %s\n  %s", state, v.ID, v.Impact, v.Help, strings.Join(nodes, "\n  "))
		} else {
			t.Logf("axe-core, %s: %s (%s): %s", state, v.ID, v.Impact, v.Help)
		}
	}
}
