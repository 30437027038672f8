// What a Mirth Connect script finds in scope, for scripts run with
// mirth: true. docs/mirth.md lists each name and how it differs from Mirth.
// __host is the Go side; it is removed from the scope after this runs.
(function (host) {
	var g = globalThis;

	function MirthMap(name) { this._name = name; }
	MirthMap.prototype.get = function (k) { return host.mapGet(this._name, k); };
	MirthMap.prototype.put = function (k, v) { return host.mapPut(this._name, k, v); };
	MirthMap.prototype.remove = function (k) { return host.mapRemove(this._name, k); };
	MirthMap.prototype.containsKey = function (k) { return host.mapGet(this._name, k) !== undefined; };
	MirthMap.prototype.keySet = function () { return host.mapKeys(this._name); };
	MirthMap.prototype.size = function () { return host.mapKeys(this._name).length; };
	MirthMap.prototype.isEmpty = function () { return host.mapKeys(this._name).length === 0; };

	g.channelMap = new MirthMap("channel");
	g.connectorMap = new MirthMap("connector");
	g.responseMap = new MirthMap("response");
	g.sourceMap = new MirthMap("source");
	g.globalChannelMap = new MirthMap("globalChannel");
	g.globalMap = new MirthMap("global");
	g.configurationMap = new MirthMap("configuration");

	function shorthand(map) {
		return function (k, v) {
			if (arguments.length > 1) { return map.put(k, v); }
			return map.get(k);
		};
	}
	g.$c = shorthand(g.channelMap);
	g.$co = shorthand(g.connectorMap);
	g.$r = shorthand(g.responseMap);
	g.$s = shorthand(g.sourceMap);
	g.$gc = shorthand(g.globalChannelMap);
	g.$g = shorthand(g.globalMap);
	g.$cfg = shorthand(g.configurationMap);
	// $(key) looks in Mirth's order: response, connector, channel, source,
	// global channel, global, configuration.
	g.$ = function (k) {
		var maps = [g.responseMap, g.connectorMap, g.channelMap, g.sourceMap, g.globalChannelMap, g.globalMap, g.configurationMap];
		for (var i = 0; i < maps.length; i++) {
			var v = maps[i].get(k);
			if (v !== undefined) { return v; }
		}
		return "";
	};

	g.logger = {};
	["trace", "debug", "info", "warn", "error", "fatal"].forEach(function (level) {
		var to = level === "trace" ? "debug" : level === "fatal" ? "error" : level;
		g.logger[level] = function (m) { host.log(to, m); };
	});

	// for each (x in v): the values of v (rewritten to for...of __each(v)).
	g.__each = function (v) {
		if (v === undefined || v === null) { return []; }
		if (host.isXML(v)) { return host.each(v); }
		if (Array.isArray(v)) { return v; }
		if (typeof v === "object") { return Object.keys(v).map(function (k) { return v[k]; }); }
		return [];
	};

	g.XML = function (s) { return host.isXML(s) ? s.copy() : host.xml(s); };
	g.XMLList = g.XML;

	// Mirth's segment helpers.
	g.createSegment = function (name, msgObj, index) {
		var seg = host.xml("<" + name + "/>");
		if (msgObj === undefined) { return seg; }
		if (index === undefined) { index = msgObj[name].length(); }
		msgObj[name][index] = seg;
		return msgObj[name][index];
	};
	g.createSegmentAfter = function (name, segment) {
		var seg = host.xml("<" + name + "/>");
		segment.parent().insertChildAfter(segment, seg);
		return segment.parent()[name][segment.parent()[name].length() - 1];
	};

	// validate(mapping, default, replacements): what Mirth's Mapper and
	// Message Builder steps call: the default when the mapping is empty,
	// then each [regex, replacement] applied.
	g.validate = function (mapping, defaultValue, replacements) {
		var result = mapping;
		if (result === undefined || result === null || String(result).length === 0) {
			result = defaultValue === undefined ? "" : defaultValue;
		}
		if (typeof result === "string" || result instanceof JString || host.isXML(result)) {
			result = String(result);
			(replacements || []).forEach(function (r) {
				result = result.replace(new RegExp(String(r[0]), "g"), String(r[1]));
			});
		}
		return result;
	};

	g.UUIDGenerator = { getUUID: function () { return g.uuid(); } };

	function millis(d) { return d instanceof Date ? d.getTime() : Number(d); }
	g.DateUtil = {
		getCurrentDate: function (pattern) { return host.formatTime(pattern, Date.now()); },
		formatDate: function (pattern, date) { return host.formatTime(pattern, millis(date)); },
		getDate: function (pattern, s) { return new Date(host.parseTime(pattern, String(s))); },
		convertDate: function (inPattern, outPattern, s) {
			return host.formatTime(outPattern, host.parseTime(inPattern, String(s)));
		}
	};

	function str(s) { return s === undefined || s === null ? null : String(s); }
	function blank(s) { s = str(s); return s === null || s.trim() === ""; }
	g.StringUtils = {
		isBlank: blank,
		isNotBlank: function (s) { return !blank(s); },
		isEmpty: function (s) { s = str(s); return s === null || s === ""; },
		isNotEmpty: function (s) { s = str(s); return s !== null && s !== ""; },
		trim: function (s) { s = str(s); return s === null ? null : s.trim(); },
		trimToEmpty: function (s) { s = str(s); return s === null ? "" : s.trim(); },
		strip: function (s) { s = str(s); return s === null ? null : s.trim(); },
		defaultString: function (s, d) { s = str(s); return s === null ? (d === undefined ? "" : d) : s; },
		defaultIfBlank: function (s, d) { return blank(s) ? d : String(s); },
		upperCase: function (s) { s = str(s); return s === null ? null : s.toUpperCase(); },
		lowerCase: function (s) { s = str(s); return s === null ? null : s.toLowerCase(); },
		capitalize: function (s) { s = str(s); return s ? s.charAt(0).toUpperCase() + s.slice(1) : s; },
		leftPad: function (s, n, p) { s = str(s); return s === null ? null : s.padStart(n, p === undefined ? " " : String(p)); },
		rightPad: function (s, n, p) { s = str(s); return s === null ? null : s.padEnd(n, p === undefined ? " " : String(p)); },
		contains: function (s, t) { s = str(s); return s !== null && s.indexOf(String(t)) >= 0; },
		startsWith: function (s, t) { s = str(s); return s !== null && s.indexOf(String(t)) === 0; },
		endsWith: function (s, t) { s = str(s); t = String(t); return s !== null && s.length >= t.length && s.slice(s.length - t.length) === t; },
		replace: function (s, a, b) { s = str(s); return s === null ? null : s.split(String(a)).join(String(b)); },
		substringBefore: function (s, t) { s = str(s); var i = s === null ? -1 : s.indexOf(t); return i < 0 ? s : s.slice(0, i); },
		substringAfter: function (s, t) { s = str(s); var i = s === null ? -1 : s.indexOf(t); return i < 0 ? "" : s.slice(i + String(t).length); },
		equals: function (a, b) { return str(a) === str(b); },
		equalsIgnoreCase: function (a, b) { a = str(a); b = str(b); return a === b || (a !== null && b !== null && a.toLowerCase() === b.toLowerCase()); },
		isNumeric: function (s) { s = str(s); return s !== null && s !== "" && /^[0-9]+$/.test(s); },
		join: function (a, sep) { return Array.prototype.slice.call(a).join(sep === undefined ? "" : sep); },
		split: function (s, sep) { s = str(s); return s === null ? null : s.split(sep === undefined ? /\s+/ : sep).filter(function (x) { return x !== ""; }); },
		repeat: function (s, n) { return String(s).repeat(n); }
	};

	// java.lang.String and friends, as far as scripts use them.
	function JString(s) {
		if (!(this instanceof JString)) { return new JString(s); }
		this._s = s === undefined || s === null ? "" : String(s);
	}
	var js = JString.prototype;
	js.toString = js.valueOf = js.toJSON = function () { return this._s; };
	js.length = function () { return this._s.length; };
	js.equals = function (o) { return this._s === String(o); };
	js.equalsIgnoreCase = function (o) { return this._s.toLowerCase() === String(o).toLowerCase(); };
	js.isEmpty = function () { return this._s.length === 0; };
	js.trim = function () { return new JString(this._s.trim()); };
	js.toUpperCase = function () { return new JString(this._s.toUpperCase()); };
	js.toLowerCase = function () { return new JString(this._s.toLowerCase()); };
	js.substring = function (a, b) { return new JString(this._s.substring(a, b)); };
	js.charAt = function (i) { return this._s.charAt(i); };
	js.indexOf = function (t, from) { return this._s.indexOf(String(t), from); };
	js.lastIndexOf = function (t) { return this._s.lastIndexOf(String(t)); };
	js.contains = function (t) { return this._s.indexOf(String(t)) >= 0; };
	js.startsWith = function (t) { return this._s.indexOf(String(t)) === 0; };
	js.endsWith = function (t) { t = String(t); return this._s.slice(this._s.length - t.length) === t; };
	js.replace = function (a, b) { return new JString(this._s.split(String(a)).join(String(b))); };
	js.replaceAll = function (re, b) { return new JString(this._s.replace(new RegExp(String(re), "g"), String(b).replace(/\$(\d)/g, "$$$1"))); };
	js.replaceFirst = function (re, b) { return new JString(this._s.replace(new RegExp(String(re)), String(b))); };
	js.matches = function (re) { return new RegExp("^(?:" + String(re) + ")$").test(this._s); };
	js.split = function (re) { return this._s.split(new RegExp(String(re))); };
	js.concat = function (t) { return new JString(this._s + String(t)); };
	js.compareTo = function (t) { t = String(t); return this._s < t ? -1 : this._s > t ? 1 : 0; };

	function StringBuilder(s) { this._s = s === undefined ? "" : String(s); }
	StringBuilder.prototype.append = function (x) { this._s += String(x); return this; };
	StringBuilder.prototype.toString = function () { return this._s; };
	StringBuilder.prototype.length = function () { return this._s.length; };

	var lang = {
		String: JString,
		StringBuilder: StringBuilder,
		Integer: { parseInt: function (s) { var n = parseInt(String(s), 10); if (isNaN(n)) { throw new TypeError("NumberFormatException"); } return n; }, valueOf: function (s) { return parseInt(String(s), 10); } },
		Double: { parseDouble: function (s) { return parseFloat(String(s)); } },
		System: { currentTimeMillis: function () { return Date.now(); } }
	};
	g.java = { lang: lang, util: { UUID: { randomUUID: function () { return g.uuid(); } } } };
	g.Packages = { java: g.java };
})(__host);
