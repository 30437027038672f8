package mirth

// The config an import writes, in the order a reader expects its keys.

type outConfig struct {
	DataDir      string        `yaml:"data_dir"`
	Scripts      *outScripts   `yaml:"scripts,omitempty"`
	Listeners    []outListener `yaml:"listeners,omitempty"`
	Sources      []outSource   `yaml:"sources,omitempty"`
	Routes       []outRoute    `yaml:"routes,omitempty"`
	Destinations []outDest     `yaml:"destinations,omitempty"`
}

type outScripts struct {
	Libraries     []string          `yaml:"libraries,omitempty"`
	Configuration map[string]string `yaml:"configuration,omitempty"`
}

type outListener struct {
	Name string `yaml:"name"`
	Addr string `yaml:"addr"`
}

type outToken struct {
	Name      string `yaml:"name"`
	TokenFile string `yaml:"token_file"`
}

type outSource struct {
	Name      string     `yaml:"name"`
	Type      string     `yaml:"type"`
	Addr      string     `yaml:"addr,omitempty"`
	Path      string     `yaml:"path,omitempty"`
	Tokens    []outToken `yaml:"tokens,omitempty"`
	User      string     `yaml:"user,omitempty"`
	Password  string     `yaml:"password,omitempty"`
	Dir       string     `yaml:"dir,omitempty"`
	Glob      string     `yaml:"glob,omitempty"`
	Recursive bool       `yaml:"recursive,omitempty"`
	OnDone    string     `yaml:"on_done,omitempty"`
	DoneDir   string     `yaml:"done_dir,omitempty"`
	Poll      string     `yaml:"poll,omitempty"`
}

type outWhen struct {
	Field      string    `yaml:"field,omitempty"`
	Equals     *string   `yaml:"equals,omitempty"`
	In         []string  `yaml:"in,omitempty"`
	Matches    *string   `yaml:"matches,omitempty"`
	Exists     *bool     `yaml:"exists,omitempty"`
	Empty      *bool     `yaml:"empty,omitempty"`
	Script     string    `yaml:"script,omitempty"`
	ScriptFile string    `yaml:"script_file,omitempty"`
	Mirth      bool      `yaml:"mirth,omitempty"`
	All        []outWhen `yaml:"all,omitempty"`
	Any        []outWhen `yaml:"any,omitempty"`
	Not        *outWhen  `yaml:"not,omitempty"`
}

type outStep struct {
	ScriptFile string `yaml:"script_file"`
	Mirth      bool   `yaml:"mirth"`
	Template   string `yaml:"template,omitempty"`
}

type outRoute struct {
	Name      string    `yaml:"name"`
	From      []string  `yaml:"from"`
	When      *outWhen  `yaml:"when,omitempty"`
	Transform []outStep `yaml:"transform,omitempty"`
	To        []string  `yaml:"to"`
}

type outRetry struct {
	MaxAttempts int      `yaml:"max_attempts"`
	Backoff     []string `yaml:"backoff,omitempty"`
}

type outEncoder struct {
	ScriptFile string `yaml:"script_file,omitempty"`
	Mirth      bool   `yaml:"mirth,omitempty"`
	Template   string `yaml:"template,omitempty"`
	Velocity   string `yaml:"velocity,omitempty"`
}

// outSMTP is an email destination's mail server.
type outSMTP struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	StartTLS *bool  `yaml:"starttls,omitempty"`
}

type outDest struct {
	Name        string            `yaml:"name"`
	Type        string            `yaml:"type"`
	Addr        string            `yaml:"addr,omitempty"`
	URL         string            `yaml:"url,omitempty"`
	Headers     map[string]string `yaml:"headers,omitempty"`
	ContentType string            `yaml:"content_type,omitempty"`
	User        string            `yaml:"user,omitempty"`
	Password    string            `yaml:"password,omitempty"`
	Dir         string            `yaml:"dir,omitempty"`
	Table       string            `yaml:"table,omitempty"`
	Columns     map[string]string `yaml:"columns,omitempty"`
	SMTP        *outSMTP          `yaml:"smtp,omitempty"`
	From        string            `yaml:"from,omitempty"`
	To          []string          `yaml:"to,omitempty"`
	Subject     string            `yaml:"subject,omitempty"`
	Body        string            `yaml:"body,omitempty"`
	Attach      string            `yaml:"attach,omitempty"`
	Timeout     string            `yaml:"timeout,omitempty"`
	Ordering    string            `yaml:"ordering,omitempty"`
	Concurrency int               `yaml:"concurrency,omitempty"`
	Retry       *outRetry         `yaml:"retry,omitempty"`
	Encoder     *outEncoder       `yaml:"encoder,omitempty"`
}
