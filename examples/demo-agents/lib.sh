# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the agents
# Shared code of the offline demo agents (demo-codex, demo-gemini, demo-claude,
# demo-copilot). Sourced, never run. Needs only bash >= 4.3, coreutils, grep,
# sed and awk (iconv is used when present).
#
# The agents are scripted stand-ins for the real AI CLIs: they print exactly
# the JSONL event formats of the real CLIs (see tests/fixtures/agent-output/),
# and their "intelligence" is a set of `# REVIEW: <description>` comment lines
# in the working directory:
#   - the implementer writes a small project with four such markers, and later
#     fixes the first remaining one per call;
#   - the reviewers report every remaining marker as one finding;
#   - the refiner answers with the whole corrected file of the first marker.
# Everything is deterministic: the same prompt in the same directory state
# gives the same answer (apart from timestamps).

export LC_ALL=C
export TZ=UTC0
shopt -u patsub_replacement 2>/dev/null || true

DEMO_VERSION=0.0.0
DEMO_MODEL=demo-offline
DEMO_LIB_DIR=${BASH_SOURCE[0]%/*}
DEMO_TEMPLATE_DIR=$DEMO_LIB_DIR/template
# Directories never read: our bookkeeping, VCS data, caches.
DEMO_SKIP_DIRS=(.orchestrator .git .hg .svn node_modules __pycache__ .venv
  .pytest_cache .mypy_cache)
DEMO_MARKER_RE='^[[:space:]]*# REVIEW: '

# -- JSON ---------------------------------------------------------------------

# shellcheck disable=SC1003 # one backslash
_demo_bs='\'

# Sets REPLY to $1 as a quoted JSON string. Input must be valid UTF-8 (see
# demo_utf8); every control character is escaped.
demo_json() {
  local s=$1 bs=$_demo_bs i c hex
  s=${s//"$bs"/"$bs$bs"}
  s=${s//\"/"$bs\""}
  s=${s//$'\n'/"${bs}n"}
  s=${s//$'\r'/"${bs}r"}
  s=${s//$'\t'/"${bs}t"}
  if [[ $s == *[$'\x01'-$'\x1f']* ]]; then
    s=${s//$'\b'/"${bs}b"}
    s=${s//$'\f'/"${bs}f"}
    for ((i = 1; i < 32; i++)); do
      printf -v hex '%02x' "$i"
      # shellcheck disable=SC2059 # builds the byte from its hex code
      printf -v c "\\x$hex"
      [[ $s == *"$c"* ]] && s=${s//"$c"/"${bs}u00$hex"}
    done
  fi
  REPLY="\"$s\""
}

# Copies stdin to stdout dropping invalid UTF-8 (JSON must be UTF-8).
demo_utf8() {
  if command -v iconv >/dev/null 2>&1; then
    iconv -f UTF-8 -t UTF-8 -c 2>/dev/null
  else
    tr -d '\200-\377'
  fi
  return 0
}

# Sets REPLY to the content of file $1, valid UTF-8, trailing newlines kept.
demo_read_file() {
  REPLY=$(demo_utf8 <"$1"; printf x)
  REPLY=${REPLY%x}
}

# Prints one JSONL line.
demo_emit() {
  printf '%s\n' "$1"
}

# -- ids, time, token counts --------------------------------------------------

# Deterministic seed from the agent name and the prompt.
demo_seed_init() {
  local sum
  sum=$(printf '%s|%s' "$DEMO_AGENT" "$DEMO_PROMPT" | cksum)
  DEMO_SEED=${sum%% *}
  DEMO_ID_COUNTER=0
}

# Sets REPLY to the next deterministic UUID-shaped id.
demo_uuid() {
  local n a b c d
  DEMO_ID_COUNTER=$((DEMO_ID_COUNTER + 1))
  n=$(((DEMO_SEED + DEMO_ID_COUNTER * 2654435761) & 0xffffffff))
  a=$(((n * 1103515245 + 12345) & 0xffffffff))
  b=$(((a * 1103515245 + 12345) & 0xffffffff))
  c=$(((b * 1103515245 + 12345) & 0xffffffff))
  d=$(((c * 1103515245 + 12345) & 0xffffffff))
  printf -v REPLY '%08x-%04x-4%03x-%04x-%04x%08x' "$a" $((b >> 16)) \
    $((b & 0xfff)) $(((c >> 16 & 0x3fff) | 0x8000)) $((c & 0xffff)) "$d"
}

# Sets REPLY to the current UTC time as 2026-01-02T03:04:05.678Z.
demo_now() {
  local t=${EPOCHREALTIME:-}
  if [[ -z $t ]]; then
    printf -v REPLY '%(%Y-%m-%dT%H:%M:%S)T.000Z' -1
    return
  fi
  local ms=${t#*.}000
  printf -v REPLY '%(%Y-%m-%dT%H:%M:%S)T.%sZ' "${t%.*}" "${ms:0:3}"
}

# Sets REPLY to milliseconds since the agent started.
demo_elapsed_ms() {
  local t=${EPOCHREALTIME:-} s=${DEMO_START:-}
  if [[ -z $t || -z $s ]]; then
    REPLY=1
    return
  fi
  local now=$((10#${t%.*} * 1000 + 10#${t#*.} / 1000))
  local start=$((10#${s%.*} * 1000 + 10#${s#*.} / 1000))
  REPLY=$((now - start + 1))
}

# Deterministic token counts (about 4 bytes per token).
demo_tokens() {
  REPLY=$(((${#1} + 3) / 4))
}

# -- command line ---------------------------------------------------------------

# Parses the real CLI's argv. Set before calling:
#   DEMO_VALUE_FLAGS   " -m --model ... " flags that take a value
#   DEMO_PROMPT_FLAGS  " -p --prompt " flags whose value is the prompt
#   DEMO_SUBCOMMANDS   " exec e " words dropped when they are the first positional
# Results: DEMO_OPT[flag]=value (last wins; boolean flags get 1),
# DEMO_OPT_LIST ("flag=value" in order), DEMO_POSITIONAL, DEMO_PROMPT_FLAG_SET,
# DEMO_PROMPT_FLAG_VALUE, DEMO_WANT_VERSION, DEMO_WANT_HELP.
demo_parse_args() {
  declare -gA DEMO_OPT=()
  DEMO_OPT_LIST=()
  DEMO_POSITIONAL=()
  DEMO_PROMPT_FLAG_SET=0
  DEMO_PROMPT_FLAG_VALUE=
  DEMO_WANT_VERSION=0
  DEMO_WANT_HELP=0
  local arg flag value only_positional=0
  while (($#)); do
    arg=$1
    shift
    if ((only_positional)) || [[ $arg == - || $arg != -* ]]; then
      if ((${#DEMO_POSITIONAL[@]} == 0)) && [[ $arg != - ]] &&
        [[ " ${DEMO_SUBCOMMANDS:-} " == *" $arg "* ]] && ((!only_positional)); then
        continue
      fi
      DEMO_POSITIONAL+=("$arg")
      continue
    fi
    case $arg in
      --) only_positional=1; continue ;;
      --version | -V | -v) DEMO_WANT_VERSION=1; continue ;;
      --help | -h) DEMO_WANT_HELP=1; continue ;;
    esac
    if [[ $arg == --*=* ]]; then
      flag=${arg%%=*}
      value=${arg#*=}
    elif [[ " ${DEMO_VALUE_FLAGS:-} ${DEMO_PROMPT_FLAGS:-} " == *" $arg "* ]]; then
      flag=$arg
      if (($#)); then
        value=$1
        shift
      else
        value=
      fi
    else
      flag=$arg
      value=1
    fi
    DEMO_OPT[$flag]=$value
    DEMO_OPT_LIST+=("$flag=$value")
    if [[ " ${DEMO_PROMPT_FLAGS:-} " == *" $flag "* ]]; then
      DEMO_PROMPT_FLAG_SET=1
      DEMO_PROMPT_FLAG_VALUE=$value
    fi
  done
}

# Prints the --version line.
demo_print_version() {
  printf '%s %s (ai-orchestrator demo agent, offline)\n' "$DEMO_AGENT" "$DEMO_VERSION"
}

# Prints --help.
demo_print_help() {
  cat <<EOF
$DEMO_AGENT $DEMO_VERSION: offline, scripted demo stand-in for the $1 CLI (ai-orchestrator).
No AI, no network. Accepts the real CLI's arguments and ignores what it does not know.
Prompt: $2
The prompt's first line "Task kind: <kind>" selects the behaviour.
Output: the real CLI's JSONL event stream ($3).
EOF
}

# Sets DEMO_PROMPT: the prompt flag's value, else the last positional argument
# unless it is "-", else stdin to EOF (not read when stdin is a terminal).
# The result is cleaned to valid UTF-8.
demo_read_prompt() {
  local raw=
  local n=${#DEMO_POSITIONAL[@]}
  if ((DEMO_PROMPT_FLAG_SET)); then
    raw=$DEMO_PROMPT_FLAG_VALUE
  elif ((n > 0)) && [[ ${DEMO_POSITIONAL[n - 1]} != - ]]; then
    raw=${DEMO_POSITIONAL[n - 1]}
  elif [[ ! -t 0 ]]; then
    raw=$(cat; printf x)
    raw=${raw%x}
  fi
  DEMO_PROMPT=$(printf '%s' "$raw" | demo_utf8; printf x)
  DEMO_PROMPT=${DEMO_PROMPT%x}
}

# Sets DEMO_KIND from the prompt's first non-empty line "Task kind: <kind>"
# (lower-case; empty when absent) and DEMO_TASK to the task text: the first
# "Task: ..." line (or the line after a bare "Task:"), else the first other
# non-empty line; sanitised to one short line of plain text.
demo_parse_prompt() {
  DEMO_KIND=
  DEMO_TASK=
  local line first=1 take_next=0 fallback="" key
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -z ${line//[[:space:]]/} ]] && continue
    if ((first)); then
      first=0
      key=${line#"${line%%[![:space:]]*}"}
      if [[ ${key,,} == "task kind:"* ]]; then
        key=${key:10}
        key=${key#"${key%%[![:space:]]*}"}
        key=${key%%[[:space:]]*}
        DEMO_KIND=${key,,}
        continue
      fi
    fi
    if ((take_next)); then
      DEMO_TASK=$line
      break
    fi
    key=${line#"${line%%[![:space:]]*}"}
    # A markdown heading "## Task": the task is the next non-empty line.
    if [[ $key == \#* ]]; then
      key=${key##*#}
      key=${key#"${key%%[![:space:]]*}"}
      key=${key%"${key##*[![:space:]]}"}
      key=${key%:}
      [[ ${key,,} == task ]] && take_next=1
      continue
    fi
    if [[ ${key,,} == "task:"* ]]; then
      key=${key:5}
      key=${key#"${key%%[![:space:]]*}"}
      if [[ -n $key ]]; then
        DEMO_TASK=$key
        break
      fi
      take_next=1
      continue
    fi
    [[ -z $fallback ]] && fallback=$line
  done <<<"$DEMO_PROMPT"
  [[ -z $DEMO_TASK ]] && DEMO_TASK=$fallback
  demo_sanitize_task "$DEMO_TASK"
  DEMO_TASK=$REPLY
}

# Sets REPLY to $1 reduced to safe plain text: letters, digits, spaces, common
# punctuation and UTF-8 (no backslash, quotes, backticks, '#', braces or
# control characters), spaces squeezed, at most 100 bytes.
demo_sanitize_task() {
  local s=$1
  s=${s//[!A-Za-z0-9 .,:;!?()\/_+=%@\'$'\x80'-$'\xff'-]/ }
  while [[ $s == *"  "* ]]; do s=${s//"  "/" "}; done
  s=${s#" "}
  s=${s%" "}
  if ((${#s} > 100)); then
    s=${s:0:100}
    # Drop a UTF-8 character the cut split, then mark the cut.
    local head=$s k=0 need=0
    while ((k < 3)) && [[ ${head: -1} == [$'\x80'-$'\xbf'] ]]; do
      head=${head%?}
      k=$((k + 1))
    done
    case ${head: -1} in
      [$'\xc0'-$'\xdf']) need=1 ;;
      [$'\xe0'-$'\xef']) need=2 ;;
      [$'\xf0'-$'\xf7']) need=3 ;;
    esac
    ((need > k)) && s=${head%?}
    s="${s%" "}..."
  fi
  [[ -z $s ]] && s="(no task text given)"
  REPLY=$s
}

# -- the working directory ----------------------------------------------------

# Fills DEMO_M_FILE/LINE/DESC/SEV with every `# REVIEW:` marker under the
# working directory, sorted by file then line. $1 = "security" keeps only
# security-related markers.
demo_scan_markers() {
  DEMO_M_FILE=()
  DEMO_M_LINE=()
  DEMO_M_DESC=()
  DEMO_M_SEV=()
  local excludes=() d entry file rest lineno text
  for d in "${DEMO_SKIP_DIRS[@]}"; do excludes+=("--exclude-dir=$d"); done
  while IFS= read -r entry; do
    [[ -z $entry ]] && continue
    file=${entry%%:*}
    rest=${entry#*:}
    lineno=${rest%%:*}
    text=${rest#*:}
    text=${text#*"# REVIEW:"}
    text=${text#"${text%%[![:space:]]*}"}
    text=${text%"${text##*[![:space:]]}"}
    text=${text%$'\r'}
    [[ -z $text ]] && text="unspecified issue"
    if [[ ${1:-} == security ]]; then
      case ${text,,} in
        *secret* | *password* | *credential* | *token* | *injection* | *unsafe* | \
          *validation* | *validate* | *auth*) ;;
        *) continue ;;
      esac
    fi
    DEMO_M_FILE+=("$file")
    DEMO_M_LINE+=("$lineno")
    DEMO_M_DESC+=("$text")
    demo_severity "$text" "${#DEMO_M_SEV[@]}"
    DEMO_M_SEV+=("$REPLY")
  done < <(grep -rnI "${excludes[@]}" -e "$DEMO_MARKER_RE" . 2>/dev/null |
    sed 's|^\./||' | demo_utf8 | sort -t: -k1,1 -k2,2n)
}

# Sets REPLY to the severity of marker text $1 (keywords, else by order $2).
demo_severity() {
  case ${1,,} in
    *secret* | *password* | *credential* | *token* | *injection* | *unsafe* | \
      *validation* | *validate*) REPLY=high ;;
    *except* | *error* | *race* | *leak* | *lock*) REPLY=medium ;;
    *test* | *doc* | *style* | *naming* | *typo* | *comment*) REPLY=low ;;
    *) if (($2 == 0)); then REPLY=high; else REPLY=medium; fi ;;
  esac
}

# Prints the regular files under the working directory (relative, sorted),
# skipping DEMO_SKIP_DIRS.
demo_list_files() {
  local prune=() d
  for d in "${DEMO_SKIP_DIRS[@]}"; do prune+=(-name "$d" -o); done
  find . \( -type d \( "${prune[@]}" -false \) -prune \) -o -type f -print 2>/dev/null |
    sed 's|^\./||' | demo_utf8 | sort
}

# -- the demo project ---------------------------------------------------------

# Prints the template files' relative target paths, sorted.
demo_template_paths() {
  local f
  for f in "$DEMO_TEMPLATE_DIR"/*.tmpl "$DEMO_TEMPLATE_DIR"/*/*.tmpl; do
    [[ -f $f ]] || continue
    f=${f#"$DEMO_TEMPLATE_DIR"/}
    printf '%s\n' "${f%.tmpl}"
  done | sort
}

# Renders template $1 with the issue ids in $2 (space separated) fixed and
# {{TASK}} replaced by $DEMO_TASK. Template lines "?id|text" exist while issue
# id is open, "!id|text" once it is fixed.
demo_render() {
  DEMO_TASK_TEXT=${DEMO_TASK:-} awk -v fixed=" $2 " '
    function subst(s,   out, i) {
      out = ""
      while ((i = index(s, "{{TASK}}")) > 0) {
        out = out substr(s, 1, i - 1) ENVIRON["DEMO_TASK_TEXT"]
        s = substr(s, i + 8)
      }
      return out s
    }
    {
      if (match($0, /^[?!][a-z_]+\|/)) {
        kind = substr($0, 1, 1)
        id = substr($0, 2, RLENGTH - 2)
        done = index(fixed, " " id " ") > 0
        if ((kind == "?" && !done) || (kind == "!" && done))
          print subst(substr($0, RLENGTH + 1))
        next
      }
      print subst($0)
    }' "$1"
}

# Prints "id<TAB>marker line" for each issue of template $1.
demo_template_issues() {
  awk 'match($0, /^\?[a-z_]+\|/) {
         rest = substr($0, RLENGTH + 1)
         if (rest ~ /^[ \t]*# REVIEW: /) print substr($0, 2, RLENGTH - 2) "\t" rest
       }' "$1"
}

# Short description of the fix of a known issue id.
demo_fix_summary() {
  case $1 in
    secret) REPLY='API_TOKEN is now read from the DEMO_APP_API_TOKEN environment variable' ;;
    validation) REPLY='parse_item() now rejects an empty name and a quantity below 1 (ValueError)' ;;
    except) REPLY='load_items() now catches only OSError/ValueError and exits with a clear message' ;;
    test) REPLY='added test_parse_item_rejects_invalid_input covering empty, zero, negative and non-numeric input' ;;
    *) REPLY='removed the review marker' ;;
  esac
}

# Plans the fix of the first remaining marker (file order, then line).
# Returns 1 when there is none. Sets FIX_FILE, FIX_LINE, FIX_DESC, FIX_SEV,
# FIX_ID (known issue id or empty), FIX_SUMMARY, FIX_CONTENT (the whole
# corrected file) and FIX_REMAINING (markers left after the fix).
demo_plan_fix() {
  demo_scan_markers
  local n=${#DEMO_M_FILE[@]}
  ((n > 0)) || return 1
  FIX_FILE=${DEMO_M_FILE[0]}
  FIX_LINE=${DEMO_M_LINE[0]}
  FIX_DESC=${DEMO_M_DESC[0]}
  FIX_SEV=${DEMO_M_SEV[0]}
  FIX_ID=
  FIX_REMAINING=$((n - 1))
  local tmpl=$DEMO_TEMPLATE_DIR/$FIX_FILE.tmpl current marker_line id mline fixed="" rendered
  demo_read_file "$FIX_FILE"
  current=$REPLY
  marker_line=$(sed -n "${FIX_LINE}p" "$FIX_FILE" | demo_utf8)
  if [[ -f $tmpl ]]; then
    local candidate=
    while IFS=$'\t' read -r id mline; do
      if grep -Fxq -- "$mline" "$FIX_FILE"; then
        [[ $mline == "$marker_line" ]] && candidate=$id
      else
        fixed+=" $id"
      fi
    done < <(demo_template_issues "$tmpl")
    if [[ -n $candidate ]]; then
      rendered=$(demo_render "$tmpl" "$fixed"; printf x)
      if [[ ${rendered%x} == "$current" ]]; then
        FIX_ID=$candidate
        FIX_CONTENT=$(demo_render "$tmpl" "$fixed $candidate"; printf x)
        FIX_CONTENT=${FIX_CONTENT%x}
      fi
    fi
  fi
  if [[ -z $FIX_ID ]]; then
    # Unknown marker or a file changed by hand: drop only the marker line.
    FIX_CONTENT=$(awk -v n="$FIX_LINE" 'NR != n' "$FIX_FILE" | demo_utf8; printf x)
    FIX_CONTENT=${FIX_CONTENT%x}
  fi
  demo_fix_summary "$FIX_ID"
  FIX_SUMMARY=$REPLY
  return 0
}

# Sets REPLY to the fenced-code language for path $1.
demo_lang() {
  case ${1##*/} in
    *.py) REPLY=python ;;
    *.md) REPLY=markdown ;;
    *.sh | *.bash) REPLY=bash ;;
    *.js | *.mjs) REPLY=javascript ;;
    *.ts) REPLY=typescript ;;
    *.json) REPLY=json ;;
    *.yaml | *.yml) REPLY=yaml ;;
    *.c | *.h) REPLY=c ;;
    *.cpp | *.hpp | *.cc | *.hh | *.cxx) REPLY=cpp ;;
    *.go) REPLY=go ;;
    *.rs) REPLY=rust ;;
    *.toml) REPLY=toml ;;
    *) REPLY=text ;;
  esac
}

# Sets REPLY to a code fence long enough for content $1.
demo_fence() {
  REPLY='```'
  while [[ $'\n'$1 == *$'\n'"$REPLY"* ]]; do REPLY+='`'; done
}

# -- review text ----------------------------------------------------------------

# Sets REPLY to the findings JSON block text for the scanned markers.
# $1 = "suggest" phrases them as suggestions (severity low).
demo_findings_block() {
  local i n=${#DEMO_M_FILE[@]} sev text out
  if ((n == 0)); then
    REPLY=$'```json\n{"findings": []}\n```\n'
    return
  fi
  out=$'```json\n{"findings": [\n'
  for ((i = 0; i < n; i++)); do
    sev=${DEMO_M_SEV[i]}
    text=${DEMO_M_DESC[i]}
    text=${text^}
    if [[ ${1:-} == suggest ]]; then
      sev=low
      text="Suggestion: consider fixing this: $text"
    fi
    [[ $text == *[.!?] ]] || text+=.
    demo_json "$sev"; out+="  {\"severity\": $REPLY"
    demo_json "${DEMO_M_FILE[i]}"; out+=", \"file\": $REPLY"
    out+=", \"line\": ${DEMO_M_LINE[i]}"
    demo_json "$text"; out+=", \"text\": $REPLY}"
    ((i + 1 < n)) && out+=,
    out+=$'\n'
  done
  out+=$']}\n```\n'
  REPLY=$out
}

# Sets DEMO_TEXT to a complete review reply for the working directory.
# $1 = review | security_review | suggestions.
demo_review_text() {
  local mode=$1 files count
  if [[ $mode == security_review ]]; then demo_scan_markers security; else demo_scan_markers; fi
  files=$(demo_list_files | grep -c .)
  count=${#DEMO_M_FILE[@]}
  local what="review"
  [[ $mode == security_review ]] && what="security review"
  [[ $mode == suggestions ]] && what="suggestions"
  local marker_kind="\`# REVIEW:\` marker"
  [[ $mode == security_review ]] && marker_kind="security-related \`# REVIEW:\` marker"
  if ((count == 0)); then
    demo_findings_block
    DEMO_TEXT="[demo agent] Offline scripted $what of the working directory ($files files): no ${marker_kind}s remain.

${REPLY}
No remaining issues."
    return
  fi
  if [[ $mode == suggestions ]]; then
    demo_findings_block suggest
  else
    demo_findings_block
  fi
  local s=s
  ((count == 1)) && s=
  DEMO_TEXT="[demo agent] Offline scripted $what of the working directory ($files files). Every remaining ${marker_kind} is one finding: $count finding$s.

${REPLY}
Fix them one at a time, starting with ${DEMO_M_FILE[0]} line ${DEMO_M_LINE[0]}."
}

# Sets DEMO_TEXT to the content of docs/USAGE.md for the working directory.
demo_usage_doc() {
  local files f list=
  while IFS= read -r f; do
    [[ -z $f || $f == docs/USAGE.md ]] && continue
    list+="- \`$f\`"$'\n'
  done < <(demo_list_files | head -n 50)
  [[ -z $list ]] && list=$'- (the working directory is still empty)\n'
  local run='No demo app yet: an implement step (demo-codex) writes it.
'
  [[ -f app/main.py ]] && run='    python -m app.main apple:3 pear
    python -m app.main --file items.json
    python -m pytest
'
  demo_scan_markers
  local open=${#DEMO_M_FILE[@]}
  DEMO_TEXT="# Usage

> [demo agent] Written by an offline, scripted demo agent of ai-orchestrator. No AI was involved.

Task: ${DEMO_TASK}

## Files

${list}
## Running the demo app

${run}
## Review status

Open \`# REVIEW:\` markers: ${open}.
"
}
