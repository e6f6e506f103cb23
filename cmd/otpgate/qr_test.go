package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// terminalTheme is a terminal's own text and background colours.
type terminalTheme struct {
	name   string
	fg, bg color.RGBA
}

var themes = []terminalTheme{
	{"light", color.RGBA{0x30, 0x30, 0x30, 0xff}, color.RGBA{0xff, 0xff, 0xff, 0xff}},
	{"dark", color.RGBA{0xcc, 0xcc, 0xcc, 0xff}, color.RGBA{0x1e, 0x1e, 0x1e, 0xff}},
}

// TestTerminalQRDecodesOnAnyTheme prints a QR code with "user totp", as
// the CLI writes it, renders what a terminal with a light theme and one
// with a dark theme would show, and reads each picture back with zbarimg.
func TestTerminalQRDecodesOnAnyTheme(t *testing.T) {
	zbarimg, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zbarimg is not installed; .ci/run installs zbar-tools")
		}
		t.Skip("zbarimg not installed (apt-get install zbar-tools)")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm-256color")
	_, cfg := writeConfig(t, cliConfig)
	if _, errOut, status := cliRun(t, cfg, "", "user", "add", "kim", "--tenant", "acme"); status != 0 {
		t.Fatalf("user add: %d %s", status, errOut)
	}
	out, errOut, status := cliRun(t, cfg, "", "user", "totp", "kim")
	if status != 0 {
		t.Fatalf("user totp: %d %s", status, errOut)
	}
	var uri string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "otpauth://") {
			uri = line
		}
	}
	if uri == "" {
		t.Fatalf("user totp printed no otpauth link:\n%s", out)
	}
	for _, theme := range themes {
		t.Run(theme.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), theme.name+".png")
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, renderTerminal(t, out, theme)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := exec.Command(zbarimg, "--quiet", "--raw", file).Output()
			if err != nil {
				t.Fatalf("zbarimg found no QR code on a %s terminal (%v); the output:\n%q", theme.name, err, out)
			}
			if strings.TrimSpace(string(got)) != uri {
				t.Errorf("%s terminal: the QR code reads %q, want %q", theme.name, got, uri)
			}
		})
	}
}

// TestTerminalQRNoColour: with NO_COLOR set the QR code is drawn without
// escape sequences, for a dark terminal as qrencode draws it.
func TestTerminalQRNoColour(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	_, cfg := writeConfig(t, cliConfig)
	cliRun(t, cfg, "", "user", "add", "kim", "--tenant", "acme")
	out, errOut, status := cliRun(t, cfg, "", "user", "totp", "kim")
	if status != 0 || !strings.Contains(out, "█") || strings.Contains(out, "\x1b") {
		t.Fatalf("NO_COLOR: got status %d, output %q %s; want a QR code without escape sequences", status, out, errOut)
	}
}

// renderTerminal draws text as a terminal with the theme shows it: each
// character a cell 4 pixels wide and 8 high, the half blocks as glyphs in
// the text colour, and every other character as background (the QR code
// is all that is to be read). SGR colour sequences (ESC [ … m) change the
// colours as a terminal's basic palette does.
func renderTerminal(t *testing.T, text string, theme terminalTheme) image.Image {
	t.Helper()
	const cw, ch = 4, 8
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	width := 0
	for _, l := range lines {
		width = max(width, len([]rune(l)))
	}
	img := image.NewRGBA(image.Rect(0, 0, (width+8)*cw, (len(lines)+4)*ch))
	fill := func(x0, y0, w, h int, c color.RGBA) {
		for y := y0; y < y0+h; y++ {
			for x := x0; x < x0+w; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	fill(0, 0, img.Bounds().Dx(), img.Bounds().Dy(), theme.bg)
	fg, bg := theme.fg, theme.bg
	for row, l := range lines {
		col := 4
		rs := []rune(l)
		for i := 0; i < len(rs); i++ {
			if rs[i] == 0x1b && i+1 < len(rs) && rs[i+1] == '[' {
				end := i + 2
				for end < len(rs) && rs[end] != 'm' {
					end++
				}
				for _, p := range strings.Split(string(rs[i+2:end]), ";") {
					fg, bg = sgr(t, p, fg, bg, theme)
				}
				i = end
				continue
			}
			top, bottom := bg, bg
			switch rs[i] {
			case '█':
				top, bottom = fg, fg
			case '▀':
				top = fg
			case '▄':
				bottom = fg
			}
			x, y := col*cw, (row+2)*ch
			fill(x, y, cw, ch/2, top)
			fill(x, y+ch/2, cw, ch/2, bottom)
			col++
		}
	}
	return img
}

// basic is the terminal's basic palette (xterm's), then its bright half.
var basic = [16]color.RGBA{
	{0, 0, 0, 0xff}, {0xcd, 0, 0, 0xff}, {0, 0xcd, 0, 0xff}, {0xcd, 0xcd, 0, 0xff},
	{0, 0, 0xee, 0xff}, {0xcd, 0, 0xcd, 0xff}, {0, 0xcd, 0xcd, 0xff}, {0xe5, 0xe5, 0xe5, 0xff},
	{0x7f, 0x7f, 0x7f, 0xff}, {0xff, 0, 0, 0xff}, {0, 0xff, 0, 0xff}, {0xff, 0xff, 0, 0xff},
	{0x5c, 0x5c, 0xff, 0xff}, {0xff, 0, 0xff, 0xff}, {0, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff},
}

// sgr applies one parameter of an SGR sequence to the colours.
func sgr(t *testing.T, p string, fg, bg color.RGBA, theme terminalTheme) (color.RGBA, color.RGBA) {
	t.Helper()
	n, err := strconv.Atoi(p)
	if p == "" {
		n, err = 0, nil
	}
	switch {
	case err != nil:
		t.Fatalf("escape sequence with parameter %q", p)
	case n == 0:
		return theme.fg, theme.bg
	case n >= 30 && n <= 37:
		return basic[n-30], bg
	case n >= 90 && n <= 97:
		return basic[n-90+8], bg
	case n == 39:
		return theme.fg, bg
	case n >= 40 && n <= 47:
		return fg, basic[n-40]
	case n >= 100 && n <= 107:
		return fg, basic[n-100+8]
	case n == 49:
		return fg, theme.bg
	default:
		t.Fatalf("escape sequence SGR %d the renderer does not know", n)
	}
	return fg, bg
}
