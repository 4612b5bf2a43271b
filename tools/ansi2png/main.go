// Command ansi2png renders a terminal screen — text with ANSI colour codes,
// as `tmux capture-pane -e -p` prints it — to a PNG, in the Go Mono font.
// It is how the README's screenshot of the explorer is made:
//
//	tmux capture-pane -e -p -t SESSION > screen.ans
//	go run ./tools/ansi2png -o docs/explorer.png < screen.ans
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

type cell struct {
	r      rune
	fg, bg color.RGBA
	bold   bool
}

var (
	defFG = color.RGBA{0xd8, 0xd8, 0xd8, 0xff}
	defBG = color.RGBA{0x1e, 0x1e, 0x2e, 0xff}
)

// palette is xterm's 256 colours.
func palette(n int) color.RGBA {
	base := []color.RGBA{{0, 0, 0, 255}, {205, 49, 49, 255}, {13, 188, 121, 255}, {229, 229, 16, 255},
		{36, 114, 200, 255}, {188, 63, 188, 255}, {17, 168, 205, 255}, {229, 229, 229, 255},
		{102, 102, 102, 255}, {241, 76, 76, 255}, {35, 209, 139, 255}, {245, 245, 67, 255},
		{59, 142, 234, 255}, {214, 112, 214, 255}, {41, 184, 219, 255}, {255, 255, 255, 255}}
	switch {
	case n < 16:
		return base[n]
	case n < 232:
		n -= 16
		v := func(x int) uint8 {
			if x == 0 {
				return 0
			}
			return uint8(55 + 40*x)
		}
		return color.RGBA{v(n / 36), v(n / 6 % 6), v(n % 6), 255}
	default:
		g := uint8(8 + 10*(n-232))
		return color.RGBA{g, g, g, 255}
	}
}

// parse turns ANSI text into rows of cells.
func parse(r io.Reader) [][]cell {
	var rows [][]cell
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	fg, bg, bold, reverse := defFG, defBG, false, false
	for sc.Scan() {
		line := sc.Text()
		var row []cell
		for i := 0; i < len(line); {
			if line[i] == 0x1b && i+1 < len(line) && line[i+1] == '[' {
				j := i + 2
				for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
					j++
				}
				if j < len(line) && line[j] == 'm' {
					params := strings.Split(line[i+2:j], ";")
					for k := 0; k < len(params); k++ {
						n, _ := strconv.Atoi(params[k])
						switch {
						case n == 0:
							fg, bg, bold, reverse = defFG, defBG, false, false
						case n == 1:
							bold = true
						case n == 7:
							reverse = true
						case n == 22:
							bold = false
						case n == 27:
							reverse = false
						case n >= 30 && n <= 37:
							fg = palette(n - 30)
						case n >= 90 && n <= 97:
							fg = palette(n - 90 + 8)
						case n >= 40 && n <= 47:
							bg = palette(n - 40)
						case n >= 100 && n <= 107:
							bg = palette(n - 100 + 8)
						case n == 39:
							fg = defFG
						case n == 49:
							bg = defBG
						case (n == 38 || n == 48) && k+2 < len(params) && params[k+1] == "5":
							c, _ := strconv.Atoi(params[k+2])
							if n == 38 {
								fg = palette(c)
							} else {
								bg = palette(c)
							}
							k += 2
						case (n == 38 || n == 48) && k+4 < len(params) && params[k+1] == "2":
							r, _ := strconv.Atoi(params[k+2])
							g, _ := strconv.Atoi(params[k+3])
							b, _ := strconv.Atoi(params[k+4])
							c := color.RGBA{uint8(r), uint8(g), uint8(b), 255}
							if n == 38 {
								fg = c
							} else {
								bg = c
							}
							k += 4
						}
					}
				}
				i = j + 1
				continue
			}
			ru, size := []rune(line[i:])[0], len(string([]rune(line[i:])[0]))
			c := cell{r: ru, fg: fg, bg: bg, bold: bold}
			if reverse {
				c.fg, c.bg = bg, fg
			}
			row = append(row, c)
			i += size
		}
		rows = append(rows, row)
	}
	return rows
}

func main() {
	out := flag.String("o", "screen.png", "output PNG")
	size := flag.Float64("size", 14, "font size in points")
	flag.Parse()
	if err := run(os.Stdin, *out, *size); err != nil {
		fmt.Fprintln(os.Stderr, "ansi2png:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out string, size float64) error {
	rows := parse(in)
	faces := map[bool]font.Face{}
	for bold, data := range map[bool][]byte{false: gomono.TTF, true: gomonobold.TTF} {
		f, err := opentype.Parse(data)
		if err != nil {
			return err
		}
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			return err
		}
		faces[bold] = face
	}
	adv, _ := faces[false].GlyphAdvance('M')
	cw := adv.Ceil()
	m := faces[false].Metrics()
	ch := (m.Ascent + m.Descent).Ceil() + 2
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	pad := 12
	img := image.NewRGBA(image.Rect(0, 0, cols*cw+2*pad, len(rows)*ch+2*pad))
	draw.Draw(img, img.Bounds(), &image.Uniform{defBG}, image.Point{}, draw.Src)
	for y, row := range rows {
		for x, c := range row {
			rect := image.Rect(pad+x*cw, pad+y*ch, pad+(x+1)*cw, pad+(y+1)*ch)
			if c.bg != defBG {
				draw.Draw(img, rect, &image.Uniform{c.bg}, image.Point{}, draw.Src)
			}
			if c.r == ' ' {
				continue
			}
			if _, ok := faces[c.bold].GlyphAdvance(c.r); !ok {
				if drawShape(img, rect, c.r, c.fg) {
					continue // heavy box lines, partial blocks: drawn, not typeset
				}
				if sub, ok := stand[c.r]; ok {
					c.r = sub
				} else {
					c.r = '+' // another glyph Go Mono lacks: keep the shape readable
				}
			}
			d := font.Drawer{Dst: img, Src: &image.Uniform{c.fg}, Face: faces[c.bold],
				Dot: fixed.P(pad+x*cw, pad+y*ch+m.Ascent.Ceil()+1)}
			d.DrawString(string(c.r))
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stand are glyphs Go Mono has for some it lacks.
var stand = map[rune]rune{'↩': '←', '⇄': '↔', '▸': '>', '▾': 'v', '↵': '←'}

// heavy gives the arms (up, right, down, left) of the heavy box-drawing
// characters, which Go Mono lacks (the focused pane's border).
var heavy = map[rune][4]bool{
	'━': {false, true, false, true}, '┃': {true, false, true, false},
	'┏': {false, true, true, false}, '┓': {false, false, true, true},
	'┗': {true, true, false, false}, '┛': {true, false, false, true},
	'┣': {true, true, true, false}, '┫': {true, false, true, true},
	'┳': {false, true, true, true}, '┻': {true, true, false, true}, '╋': {true, true, true, true},
}

// drawShape draws r into the cell rect when it is a heavy box-drawing
// character or a left partial block (▏▎▍▋▊▉: eighths of the cell), and
// says whether it did.
func drawShape(img *image.RGBA, rect image.Rectangle, r rune, fg color.RGBA) bool {
	fill := func(x0, y0, x1, y1 int) {
		draw.Draw(img, image.Rect(x0, y0, x1, y1), &image.Uniform{fg}, image.Point{}, draw.Src)
	}
	if r >= '▉' && r <= '▏' { // U+2589 (7/8) … U+258F (1/8)
		eighths := int('▏'-r) + 1
		fill(rect.Min.X, rect.Min.Y, rect.Min.X+rect.Dx()*eighths/8, rect.Max.Y)
		return true
	}
	arms, ok := heavy[r]
	if !ok {
		return false
	}
	cx, cy := (rect.Min.X+rect.Max.X)/2, (rect.Min.Y+rect.Max.Y)/2
	const w = 1 // half the line's thickness: 3 px
	if arms[0] {
		fill(cx-w, rect.Min.Y, cx+w+1, cy+w+1)
	}
	if arms[1] {
		fill(cx-w, cy-w, rect.Max.X, cy+w+1)
	}
	if arms[2] {
		fill(cx-w, cy-w, cx+w+1, rect.Max.Y)
	}
	if arms[3] {
		fill(rect.Min.X, cy-w, cx+w+1, cy+w+1)
	}
	return true
}
