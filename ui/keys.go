package ui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the explorer answers to; the help view lists them.
type keyMap struct {
	Provision, Redeploy, SendWS, SendWSS, Teardown, Capture, Export  key.Binding
	SendHTTP, SendHTTPS, Compare, Follow, Conns, Fold, Legs          key.Binding
	GetHTTP, GetHTTPS                                                key.Binding
	Filter, ShowApp, Next, Prev, Debug, Find, FindNext, FindPrev     key.Binding
	Up, Down, PageUp, PageDown, Top, Bottom, Enter, Back, Help, Quit key.Binding
	Dismiss                                                          key.Binding
	// up says the lab is up (the footer then offers what works on it).
	up bool
	// shared: a session of serve, where q leaves the lab to the others.
	shared bool
	// warned says a warning is shown that D dismisses.
	warned bool
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Provision: b([]string{"p"}, "p", "bring the lab up"),
		Redeploy:  b([]string{"r"}, "r", "redeploy the apps"),
		SendWS:    b([]string{"s"}, "s", "send over ws"),
		SendWSS:   b([]string{"w"}, "w", "send over wss"),
		SendHTTP:  b([]string{"h"}, "h", "POST /echo over http"),
		SendHTTPS: b([]string{"H"}, "H", "POST /echo over https"),
		GetHTTP:   b([]string{"u"}, "u", "GET a path over http"),
		GetHTTPS:  b([]string{"U"}, "U", "GET a path over https"),
		Compare:   b([]string{"C"}, "C", "compare the apps (probes)"),
		Teardown:  b([]string{"t"}, "t", "tear down (asks)"),
		Capture:   b([]string{"c"}, "c", "capture on/off"),
		Export:    b([]string{"e"}, "e", "export pcapng"),
		Filter:    b([]string{"/"}, "/", "filter packets"),
		// Find searches beside the filter, as less and vim do.
		Find:     b([]string{"ctrl+f"}, "ctrl+f", "find (filter language)"),
		FindNext: b([]string{"n"}, "n/N", "next/previous found"),
		FindPrev: b([]string{"N"}, "N", "previous found"),
		ShowApp:  b([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}, "1-9", "show app N"),
		Next:     b([]string{"tab"}, "tab", "next pane"),
		Prev:     b([]string{"shift+tab"}, "shift+tab", "previous pane"),
		Debug:    b([]string{"x"}, "x", "shell on the lab host"),
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown"}, "pgdn", "page down"),
		Top:      b([]string{"home", "g"}, "home/g", "oldest"),
		Bottom:   b([]string{"end", "G"}, "end/G", "newest (follow)"),
		Enter:    b([]string{"enter"}, "enter", "packet details"),
		Follow:   b([]string{"f"}, "f", "follow the row's connection"),
		Conns:    b([]string{"o"}, "o", "the app's connections"),
		Fold:     b([]string{"z"}, "z", "fold/unfold the setup"),
		Legs:     b([]string{"l"}, "l", "the message on each hop"),
		Back:     b([]string{"esc"}, "esc", "close / cancel"),
		Dismiss:  b([]string{"D"}, "D", "dismiss the warning"),
		Help:     b([]string{"?"}, "?", "help"),
		Quit:     b([]string{"q", "ctrl+c"}, "q/ctrl+c", "quit (asks if up)"),
	}
}

// ShortHelp implements help.KeyMap: the footer, which lists what can be
// done now (p only while the lab is down), the help and quit keys first so
// a narrow terminal still shows them.
func (k keyMap) ShortHelp() []key.Binding {
	short := func(b key.Binding, desc string) key.Binding {
		b.SetHelp(b.Help().Key, desc)
		return b
	}
	quit := "quit"
	if k.shared {
		quit = "leave"
	}
	out := []key.Binding{short(k.Help, "help"), short(k.Quit, quit)}
	if k.warned {
		out = append(out, short(k.Dismiss, "dismiss warning"))
	}
	if !k.up {
		return append(out, short(k.Provision, "bring the lab up"))
	}
	return append(out, short(k.Compare, "compare"), short(k.SendWS, "send ws"), short(k.SendWSS, "send wss"), short(k.Capture, "capture"),
		short(k.Export, "export"), short(k.Filter, "filter"), short(k.Next, "next pane"), short(k.Teardown, "tear down"))
}

// FullHelp implements help.KeyMap: every key, D only while there is a
// warning for it to dismiss.
func (k keyMap) FullHelp() [][]key.Binding {
	last := []key.Binding{k.Back, k.Help, k.Quit}
	if k.warned {
		last = []key.Binding{k.Back, k.Dismiss, k.Help, k.Quit}
	}
	return [][]key.Binding{
		{k.Provision, k.Redeploy, k.SendWS, k.SendWSS, k.SendHTTP, k.SendHTTPS, k.GetHTTP, k.GetHTTPS, k.Compare, k.Teardown, k.Capture, k.Export},
		{k.Filter, k.Find, k.FindNext, k.ShowApp, k.Next, k.Prev, k.Debug, k.Conns},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Enter, k.Follow, k.Fold, k.Legs},
		last,
	}
}
