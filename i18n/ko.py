# ruff: noqa: E501 - messages are kept whole, one per line, as the code spells them
"""Korean messages, keyed by the English text in the code (`_("...")`).

Placeholders (`{case_id}`) stay as they are; `tests/test_i18n.py` checks that every message
in the code, and every status, type and kind the commands show, is here with the same
placeholders.
"""

MESSAGES: dict[str, str] = {
    # --- vocabulary shown in tables and fields -------------------------------------------
    # queue item statuses
    "new": "신규",
    "confirmed": "확인됨",
    "rejected": "기각됨",
    "notice_sent": "요청 발송됨",
    "still_online": "게시 중",
    "escalated": "상향 조치됨",
    "removed": "삭제됨",
    "reappeared": "재게시됨",
    # case types, statuses, services
    "digital-sex-crime": "디지털 성범죄",
    "stalking": "스토킹",
    "child-exploitation": "아동 성착취",
    "domestic-violence": "가정폭력",
    "other": "기타",
    "open": "진행 중",
    "closed": "종결",
    "counseling": "상담",
    "deletion": "삭제 지원",
    "legal": "법률 지원",
    "psychological": "심리 지원",
    "medical": "의료 지원",
    "housing": "주거 지원",
    "financial": "경제 지원",
    # references
    "image": "이미지",
    "video": "영상",
    "audio": "음성",
    "text": "텍스트",
    "file": "파일",
    "given": "동의",
    "withdrawn": "철회됨",
    # notice statuses
    "drafted": "작성됨",
    "sending": "발송 중",
    "sent": "발송됨",
    "failed": "실패",
    "discarded": "폐기됨",
    # what a purge deleted
    "reference signals": "원본 지문",
    "references": "원본",
    "item signals": "수집물 지문",
    "items": "항목",
    "evidence files": "증거 파일",
    "takedown urls": "삭제 대상 URL",
    "notice messages": "요청서 본문",
    "contact": "연락처",
    "pseudonym": "가명",
    # --- table headers and field labels --------------------------------------------------
    "id": "번호",
    "case": "사례",
    "type": "유형",
    "status": "상태",
    "assigned": "담당자",
    "open takedowns": "처리 중 삭제 건",
    "opened": "개시",
    "services": "지원 내역",
    "reference": "원본",
    "location": "위치",
    "detected": "발견",
    "item": "항목",
    "host": "호스트",
    "reason": "사유",
    "match": "일치",
    "signal": "신호",
    "distance": "거리",
    "score": "점수",
    "why": "근거",
    "size": "크기",
    "evidence": "증거",
    "history": "이력",
    "page": "페이지",
    "media": "미디어",
    "by": "처리자",
    "modality": "종류",
    "label": "이름",
    "signals": "지문",
    "in bank": "색인 항목",
    "consent": "동의",
    "added": "등록",
    "abuse e-mail": "신고 이메일",
    "form": "신고 양식",
    "language": "언어",
    "notice language": "요청서 언어",
    "notice": "요청서",
    "to": "받는 곳",
    "run": "실행",
    "pages": "페이지",
    "matches": "일치",
    "queue items": "대기열 항목",
    "time": "소요 시간",
    "outcomes": "결과",
    "log": "로그",
    "wrote": "저장한 파일",
    "plot": "그래프",
    "by status": "상태별",
    "by case type": "사례 유형별",
    "by host": "호스트별",
    "detection -> notice": "발견 -> 삭제 요청",
    "detection -> removal": "발견 -> 삭제",
    "events stamped before detection": "발견 이전 시각이 기록된 이벤트",
    "yes": "예",
    "no": "아니요",
    "error": "오류",
    "crawled": "수집함",
    "scanned": "검사함",
    "stored encrypted (--reveal shows it)": "암호화되어 저장됨 (--reveal 로 표시)",
    "not shown at this width: {columns} (--json has everything)": (
        "이 너비에서 생략한 열: {columns} (--json 에 모두 있음)"
    ),
    "#{id} sealed {at}, WARC records: {records}": "#{id} {at} 봉인, WARC 레코드: {records}개",
    "{digest} (verified)": "{digest} (검증됨)",
    "{media} ({hashed} fingerprinted, {duplicate} duplicate content)": (
        "{media}개 (지문 생성 {hashed}개, 중복 내용 {duplicate}개)"
    ),
    "{hours:.1f} h": "{hours:.1f}시간",
    "{days:.1f} days": "{days:.1f}일",
    "from the start": "처음부터",
    "unknown notice {ref}": "없는 요청서 {ref}",
    "{start}… ({length} characters; --json has all)": "{start}… ({length}자; --json 에 모두 있음)",
    "{frames} frames (--format vpdq or --json prints them)": (
        "{frames}개 프레임 (--format vpdq 나 --json 으로 출력)"
    ),
    # --- what commands report ------------------------------------------------------------
    "ansim home ready at {home} (key created)": "ansim 홈 준비됨: {home} (키 생성)",
    "ansim home ready at {home} (key kept)": "ansim 홈 준비됨: {home} (기존 키 유지)",
    "rebuilt every index; entries:": "모든 색인을 다시 만들었습니다. 항목 수:",
    "rebuilt from the store (they disagreed with it): {names}": (
        "저장소와 달라서 다시 만든 색인: {names}"
    ),
    "audit chain BROKEN: {problems} problems in {entries} entries": (
        "감사 기록 체인 손상: 항목 {entries}개 중 문제 {problems}건"
    ),
    "audit chain intact: {entries} entries": "감사 기록 체인 이상 없음: 항목 {entries}개",
    "entry {seq}: {problem}": "항목 {seq}: {problem}",
    "opened case {case_id}": "사례 {case_id} 개시",
    "recorded service {service_id} for {case_id}": "{case_id} 에 지원 내역 {service_id} 기록",
    "case {case_id} closed and purged; deleted:": "사례 {case_id} 종결 및 파기. 삭제한 것:",
    "case {case_id} closed": "사례 {case_id} 종결",
    "case {case}, reference {reference}: {why}; queue item {item}": (
        "사례 {case}, 원본 {reference}: {why}; 대기열 항목 {item}"
    ),
    "case {case}, reference {reference}: {why}; {queued}": (
        "사례 {case}, 원본 {reference}: {why}; {queued}"
    ),
    "queue item {item}": "대기열 항목 {item}",
    "not recorded (dry run)": "기록 안 함 (시험 실행)",
    "{scanned} scanned, {matches} matches, {errors} errors": (
        "검사 {scanned}개, 일치 {matches}건, 오류 {errors}건"
    ),
    "skipped {path}: not a video": "건너뜀 {path}: 영상이 아님",
    "{ref}: {status}; items moved: {items}": "{ref}: {status}; 옮긴 항목: {items}",
    "{ref}: notice to {to} ({lang}) for items {items}": (
        "{ref}: {to} 에 보낼 삭제 요청 ({lang}), 항목 {items}"
    ),
    "skipped item {id}: {reason}": "건너뛴 항목 {id}: {reason}",
    "files in {folder}": "파일 위치: {folder}",
    "sent {ref} to {to}: items {items} -> notice_sent": (
        "{ref} 을(를) {to} 에 발송: 항목 {items} -> 요청 발송됨"
    ),
    "failed {ref} to {to}: {error}": "{ref} 을(를) {to} 에 보내지 못함: {error}",
    "skipped {ref}: {reason}": "건너뜀 {ref}: {reason}",
    "stuck: {ref} was left sending by an interrupted send: check the mail log, then "
    "`ansim notice settle {ref} --delivered` (or --not-delivered)": (
        "멈춤: 중단된 발송 때문에 {ref} 이(가) 발송 중 상태로 남았습니다. 메일 로그를 확인한 뒤 "
        "`ansim notice settle {ref} --delivered` (또는 --not-delivered) 를 실행하세요"
    ),
    " (no --smtp: not resent)": " (--smtp 없음: 재발송 안 함)",
    "{gone} gone, {online} online, {unreachable} unreachable; "
    "{due} due for resend{unsent}, {resent} resent": (
        "삭제 {gone}건, 게시 중 {online}건, 접속 불가 {unreachable}건; "
        "재발송 대상 {due}건{unsent}, 재발송 {resent}건"
    ),
    "item {item_id} confirmed": "항목 {item_id} 확인",
    "item {item_id} rejected": "항목 {item_id} 기각",
    "item {item_id}: confirmation {have} of {need} recorded; needs another analyst": (
        "항목 {item_id}: 확인 {need}건 중 {have}건 기록됨. 다른 분석 담당자의 확인이 필요합니다"
    ),
    "{case_type}: {count} analyst(s)": "{case_type}: 분석 담당자 {count}명",
    " (already a reference of this case)": " (이미 이 사례의 원본)",
    "reference {id} ({modality}) <- {path}": "원본 {id} ({modality}) <- {path}",
    "already crawled at {location}: {why}; queue item {item}": (
        "이미 수집된 곳 {location}: {why}; 대기열 항목 {item}"
    ),
    "{added} added, {failed} failed": "등록 {added}개, 실패 {failed}개",
    "{imported} imported, {rejected} rejected": "가져옴 {imported}개, 거부 {rejected}개",
    "line {line}: {error}": "{line}번째 줄: {error}",
    "reference {id} withdrawn; {removed} signals deleted": (
        "원본 {id} 동의 철회: 지문 {removed}개 삭제"
    ),
    "Takedowns detected {since} to {until}: {items} items in {cases} cases": (
        "{since} ~ {until} 에 발견한 삭제 대상: 사례 {cases}건, 항목 {items}건"
    ),
    "{count} items, median {median}, p90 {p90}": "{count}건, 중앙값 {median}, p90 {p90}",
    "within 24 h {day}, within 3 days {days}, over 42 days {over}": (
        "24시간 이내 {day}, 3일 이내 {days}, 42일 초과 {over}"
    ),
    "still online after 42 days: {count}": "42일이 지나도 게시 중: {count}건",
    "{reappeared} of {removed} removed ({rate})": "삭제된 {removed}건 중 {reappeared}건 ({rate})",
    # --- prompts and errors --------------------------------------------------------------
    "Purge {case_id}? This cannot be undone.": "{case_id} 을(를) 파기할까요? 되돌릴 수 없습니다.",
    "give --confirmations N to set it": "설정하려면 --confirmations N 을 주세요",
    "give files or folders, or --text": "파일이나 폴더, 또는 --text 를 주세요",
    "give --seeds (URLs or files of URLs), or --resume": (
        "--seeds (URL 또는 URL 목록 파일) 나 --resume 을 주세요"
    ),
    "seed {seed!r} is neither a URL nor a readable file": (
        "시작 주소 {seed!r} 는 URL 도, 읽을 수 있는 파일도 아닙니다"
    ),
    "--format must be text or vpdq": "--format 은 text 또는 vpdq 여야 합니다",
    "--dry-run applies to files only, not URLs": (
        "--dry-run 은 파일에만 쓸 수 있고 URL 에는 안 됩니다"
    ),
    "shared data not found at {path} (set ANSIM_SHARED_DATA)": (
        "공유 데이터가 {path} 에 없습니다 (ANSIM_SHARED_DATA 를 설정하세요)"
    ),
    # --- help: the command groups --------------------------------------------------------
    "ansim: find reposted victim material by fingerprint and drive its removal.": (
        "ansim: 피해 촬영물의 재유포를 지문으로 찾아내고 삭제까지 이끕니다."
    ),
    "Print the version and exit.": "버전을 출력하고 끝냅니다.",
    "Arguments": "인자",
    "Options": "옵션",
    "Commands": "명령",
    "Error": "오류",
    "[required]": "[필수]",
    "[default: {}]": "[기본값: {}]",
    "Support cases and the services given to them.": "지원 사례와 제공한 지원 내역.",
    "References: what a victim reported, kept as fingerprints only.": (
        "원본: 피해자가 신고한 자료 (지문으로만 보관)."
    ),
    "The takedown queue.": "삭제 대기열.",
    "Hosts: where removal notices go.": "호스트: 삭제 요청을 받는 곳.",
    "Removal notices: draft, send.": "삭제 요청: 작성, 발송.",
    "Crawls: fetch sites, fingerprint what is there.": "수집: 사이트를 가져와 지문을 만듭니다.",
    "Sealed WARC evidence of matches.": "일치 항목의 봉인된 WARC 증거.",
    "The hash-chained audit log.": "해시 체인으로 묶인 감사 기록.",
    "The signal indexes (rebuildable from the store).": "지문 색인 (저장소에서 다시 만들 수 있음).",
    "Benchmarks that measure precision and speed.": "정확도와 속도를 재는 벤치마크.",
    "Learned models: training the image copy descriptor.": "학습 모델: 이미지 복제 기술자 학습.",
    "Show one removal notice: host, address, language, status, times, its queue items.": (
        "삭제 요청서 하나를 보여 줍니다: 호스트, 주소, 언어, 상태, 시각, 대기열 항목."
    ),
    # --- help: every command and option of the groups an analyst uses ---
    "Create $ANSIM_HOME (default ~/.ansim): database, schema and encryption key (mode 0600).\n\nSafe to run again: it only creates what is missing and upgrades the schema.": "$ANSIM_HOME (기본값 ~/.ansim) 을 만듭니다: 데이터베이스, 스키마, 암호화 키 (권한 0600).\n\n다시 실행해도 안전합니다: 없는 것만 만들고 스키마를 올립니다.",
    "Print machine-readable JSON.": "기계가 읽는 JSON 으로 출력합니다.",
    "Print the signals of each file without storing anything.\n\nExamples: `ansim hash photo.jpg --json`; `ansim hash clip.mp4 --format vpdq > clip.txt`;\nMeta's own vPDQ hashes: `ansim hash clip.mp4 --format vpdq --seconds-per-hash 0\n--no-crop-borders`.": "파일마다 지문(신호)을 출력합니다. 아무것도 저장하지 않습니다.\n\n예: `ansim hash photo.jpg --json`; `ansim hash clip.mp4 --format vpdq > clip.txt`; Meta 의 vPDQ 해시 그대로: `ansim hash clip.mp4 --format vpdq --seconds-per-hash 0 --no-crop-borders`.",
    "Files or folders (recursive).": "파일 또는 폴더 (하위 폴더 포함).",
    "Decode images at full size (slower).": "이미지를 원래 크기로 디코딩합니다 (더 느림).",
    "text, or vpdq: videos as vPDQ hash lines.": "text, 또는 vpdq: 영상을 vPDQ 해시 줄로.",
    "Video: hash a frame every this many seconds (0 = every frame).": "영상: 이 초마다 한 프레임의 해시를 만듭니다 (0 = 모든 프레임).",
    "Video: crop flat borders (letterbox) before hashing.": "영상: 해시하기 전에 단색 테두리(레터박스)를 잘라냅니다.",
    "Fingerprint collected files or URLs, match them against every reference, queue the copies.\n\nA URL is fetched with the crawler's fetcher and guards: a page is checked with the\nmedia on it, a media URL by itself; matches are queued with sealed WARC evidence.\n\nExamples: `ansim scan ~/collected/forum-dump/ --json`,\n`ansim scan https://forum.example/thread/123 https://cdn.example/i/9.jpg`": "수집한 파일이나 URL 의 지문을 만들어 모든 원본과 대조하고, 복제물을 대기열에 올립니다.\n\nURL 은 수집기의 fetcher 와 보호 장치로 가져옵니다: 페이지는 그 안의 미디어와 함께, 미디어 URL 은 그것만 검사합니다. 일치하면 봉인된 WARC 증거와 함께 대기열에 올립니다.\n\n예: `ansim scan ~/collected/forum-dump/ --json`, `ansim scan https://forum.example/thread/123 https://cdn.example/i/9.jpg`",
    "Files, folders (recursive), or http(s) URLs.": "파일, 폴더 (하위 폴더 포함), 또는 http(s) URL.",
    "Match but record nothing.": "대조만 하고 아무것도 기록하지 않습니다.",
    "Allow 127.0.0.0/8 and ::1 (tests, local use); private ranges stay refused.": "127.0.0.0/8 과 ::1 을 허용합니다 (테스트, 로컬 사용). 사설 대역은 계속 거부합니다.",
    "Takedown figures: items by status, case type and host; services by kind; time to\nnotice and to removal (median, p90, share within 24 h / 3 days / over 42 days);\nreappearance rate.\n\nExample: `ansim report --since 2026-03-01 --until 2026-04-01 --plot march.png`": "삭제 현황: 상태별, 사례 유형별, 호스트별 항목; 종류별 지원 내역; 삭제 요청과 삭제까지 걸린 시간 (중앙값, p90, 24시간 / 3일 이내와 42일 초과 비율); 재게시 비율.\n\n예: `ansim report --since 2026-03-01 --until 2026-04-01 --plot march.png`",
    "From this date (UTC), e.g. 2026-03-01.": "이 날짜부터 (UTC), 예: 2026-03-01.",
    "Before this date (default: now).": "이 날짜 전까지 (기본값: 지금).",
    "Only this case.": "이 사례만.",
    "Also draw the figures into this PNG.": "현황을 이 PNG 그래프로도 그립니다.",
    "Open a support case.\n\nExample: `ansim case open --type digital-sex-crime --pseudonym 'Blue'`": "지원 사례를 엽니다.\n\n예: `ansim case open --type digital-sex-crime --pseudonym 'Blue'`",
    "One of: digital-sex-crime, stalking, child-exploitation, domestic-violence, other.": "다음 중 하나: digital-sex-crime, stalking, child-exploitation, domestic-violence, other.",
    "A name to call the case by (never the real name).": "사례를 부를 이름 (실명은 절대 쓰지 않습니다).",
    "Victim contact details; stored encrypted.": "피해자 연락처. 암호화해서 저장합니다.",
    "Staff member in charge (default: you).": "담당 직원 (기본값: 나).",
    "List cases with their reference and open-takedown counts.": "사례 목록과 각 사례의 원본 수, 처리 중인 삭제 건수.",
    "open or closed": "open 또는 closed",
    "Show one case. Contact details stay hidden unless --reveal is given.": "사례 하나를 보여 줍니다. 연락처는 --reveal 을 주지 않으면 가려집니다.",
    "Decrypt and show contact details (audited).": "연락처를 복호화해 보여 줍니다 (감사 기록에 남음).",
    "Record a support service given to a case.\n\nExample: `ansim case service C-2026-0001 --kind legal --note 'filed complaint'`": "사례에 제공한 지원 내역을 기록합니다.\n\n예: `ansim case service C-2026-0001 --kind legal --note 'filed complaint'`",
    "One of: counseling, deletion, legal, psychological, medical, housing, financial.": "다음 중 하나: counseling, deletion, legal, psychological, medical, housing, financial.",
    "What was done.": "무엇을 했는지.",
    "Close a case; with --purge, delete what identifies it (cannot be undone, audited).\n\nExample: `ansim case close C-2026-0001 --purge --yes`": "사례를 종결합니다. --purge 를 주면 사례를 식별할 수 있는 것을 삭제합니다 (되돌릴 수 없음, 감사 기록에 남음).\n\n예: `ansim case close C-2026-0001 --purge --yes`",
    "Also delete contact, pseudonym, signals (from every index) and evidence.": "연락처, 가명, 지문 (모든 색인에서), 증거도 삭제합니다.",
    "Do not ask before purging.": "파기하기 전에 묻지 않습니다.",
    'Fingerprint reported files or texts into the case\'s references. The media itself is\nnot kept.\n\nExamples: `ansim ref add C-2026-0001 ~/intake/2026-11-25/`,\n`ansim ref add C-2026-0001 posts.txt --lines`, `ansim ref add C-2026-0001 --text "..."`': '신고된 파일이나 텍스트의 지문을 사례의 원본으로 등록합니다. 미디어 자체는 보관하지 않습니다.\n\n예: `ansim ref add C-2026-0001 ~/intake/2026-11-25/`, `ansim ref add C-2026-0001 posts.txt --lines`, `ansim ref add C-2026-0001 --text "..."`',
    "Register this text (kept as fingerprints only).": "이 텍스트를 등록합니다 (지문으로만 보관).",
    "Text files: one reference per non-blank line.": "텍스트 파일: 비어 있지 않은 줄마다 원본 하나.",
    "Video: hash a frame every this many seconds (0 = every frame, frames within a few bits of the last kept one dropped; scans use 1 s).": "영상: 이 초마다 한 프레임의 해시를 만듭니다 (0 = 모든 프레임, 직전에 남긴 프레임과 몇 비트밖에 다르지 않은 프레임은 버림; 검사는 1초 간격).",
    "Import a hash list shared by another system (StopNCII-style banks, HMA exports).\n\nWith `--format vpdq` each file is one video's vPDQ hashes (`frame,quality,pdq,seconds`\nlines, as Meta's vpdq writes them), or several under `# label` lines; a folder imports\nevery file in it. Example: `ansim ref import C-2026-0001 shared-video.txt --format vpdq`": "다른 시스템이 공유한 해시 목록을 가져옵니다 (StopNCII 방식 뱅크, HMA 내보내기).\n\n`--format vpdq` 이면 파일 하나가 영상 하나의 vPDQ 해시입니다 (Meta 의 vpdq 가 쓰는 `frame,quality,pdq,seconds` 줄), 또는 `# label` 줄 아래 여러 개; 폴더는 안의 모든 파일을 가져옵니다. 예: `ansim ref import C-2026-0001 shared-video.txt --format vpdq`",
    "One hash per line, optionally `,label`.": "한 줄에 해시 하나, 선택적으로 `,label`.",
    "pdq, md5, or vpdq (a video's hash file or folder)": "pdq, md5, 또는 vpdq (영상 하나의 해시 파일이나 폴더)",
    "Export reference hashes as `hash,ref-ID` lines, the format `ref import` reads.\n\n`--format vpdq` writes video references in vPDQ's format: one plain vPDQ file for one\nvideo, `# ref-ID` headed blocks for several, one `ref-ID.txt` each when --out is a folder.": "원본 해시를 `hash,ref-ID` 줄로 내보냅니다. `ref import` 가 읽는 형식입니다.\n\n`--format vpdq` 는 영상 원본을 vPDQ 형식으로 씁니다: 영상이 하나면 vPDQ 파일 하나, 여럿이면 `# ref-ID` 머리줄로 나눈 블록, --out 이 폴더면 영상마다 `ref-ID.txt`.",
    "pdq, md5 or vpdq": "pdq, md5 또는 vpdq",
    "Write here instead of stdout.": "표준 출력 대신 여기에 씁니다.",
    "The victim withdrew consent: its signals are deleted and leave every index at once.": "피해자가 동의를 철회했습니다: 지문을 삭제하고 모든 색인에서 즉시 뺍니다.",
    "Why (kept in the audit log).": "이유 (감사 기록에 남음).",
    "List references: case, modality, label, signals kept, entries in the banks, consent.\n\nExample: `ansim ref list --case C-2026-0001 --modality video`": "원본 목록: 사례, 종류, 이름, 보관한 지문, 색인 항목 수, 동의.\n\n예: `ansim ref list --case C-2026-0001 --modality video`",
    "Only this modality: image, video, audio, text or file.": "이 종류만: image, video, audio, text 또는 file.",
    "List takedown items. Example: `ansim queue list --status new --case C-2026-0001`": "삭제 대기열 항목 목록. 예: `ansim queue list --status new --case C-2026-0001`",
    "Only items in this status.": "이 상태의 항목만.",
    "Show one takedown item with its match evidence and status history.": "삭제 대기열 항목 하나를 일치 근거, 증거, 상태 이력과 함께 보여 줍니다.",
    "An analyst confirms the match is the reported material (needed before any notice).\n\nCase types set to need two analysts (`ansim queue policy`) stay `new` until a second,\ndifferent analyst confirms too.": "분석 담당자가 일치한 것이 신고된 자료임을 확인합니다 (삭제 요청 전에 필요).\n\n두 명의 확인이 필요한 사례 유형 (`ansim queue policy`) 은 다른 분석 담당자가 한 번 더 확인할 때까지 `new` 로 남습니다.",
    "Why it is a copy.": "복제물이라고 보는 이유.",
    "Reject a false match, with the reason.": "잘못된 일치를 기각합니다. 이유를 함께 적습니다.",
    "Why it is not a copy.": "복제물이 아니라고 보는 이유.",
    "Show or set how many analysts must confirm items of a case type.\n\nExample: `ansim queue policy child-exploitation --confirmations 2`": "사례 유형별로 몇 명의 분석 담당자가 확인해야 하는지 보거나 정합니다.\n\n예: `ansim queue policy child-exploitation --confirmations 2`",
    "Case type to set.": "정할 사례 유형.",
    "Analysts who must confirm (1-5).": "확인해야 하는 분석 담당자 수 (1-5).",
    "Fetch every notified URL: gone -> removed, still there -> still_online (resent after\n--resend-after hours, escalated after --escalate-after days), unreachable -> unchanged.\n\nFor a nightly cron: `ansim queue recheck --json >> recheck.log`. Exits 1 when a URL\ncould not be checked or a resend failed.": "삭제 요청한 URL 을 모두 다시 가져옵니다: 사라짐 -> removed, 아직 있음 -> still_online (--resend-after 시간 뒤 재발송, --escalate-after 일 뒤 상향 조치), 접속 불가 -> 그대로.\n\n매일 밤 cron 으로: `ansim queue recheck --json >> recheck.log`. 확인하지 못한 URL 이나 실패한 재발송이 있으면 1 로 끝납니다.",
    "Hours before a notice is resent.": "삭제 요청을 다시 보내기까지의 시간.",
    "Days online before escalation.": "상향 조치하기까지 게시된 일수.",
    "Resend due notices now (needs --smtp and --sender).": "기한이 된 삭제 요청을 지금 다시 보냅니다 (--smtp 와 --sender 필요).",
    "Seconds per URL.": "URL 하나당 초.",
    "smtp://HOST:PORT, smtp+starttls://... (default $ANSIM_SMTP_URL)": "smtp://HOST:PORT, smtp+starttls://... (기본값 $ANSIM_SMTP_URL)",
    "From address (default $ANSIM_NOTICE_FROM).": "보내는 주소 (기본값 $ANSIM_NOTICE_FROM).",
    "Organization name (default $ANSIM_NOTICE_ORG).": "기관 이름 (기본값 $ANSIM_NOTICE_ORG).",
    "Register or update a host; it covers its subdomains too.\n\nExample: `ansim host set img.example.com --abuse-email abuse@example.com --lang ko`": "호스트를 등록하거나 고칩니다. 하위 도메인도 포함합니다.\n\n예: `ansim host set img.example.com --abuse-email abuse@example.com --lang ko`",
    "Where notices go.": "삭제 요청을 받을 곳.",
    "The host's reporting form.": "호스트의 신고 양식.",
    "Notice language: ko or en.": "요청서 언어: ko 또는 en.",
    "List registered hosts.": "등록된 호스트 목록.",
    "Group confirmed items per host into notices (.eml, Korean or English per host) and a\nCSV for bulk submission to the regulator. Nothing is sent.\n\nExample: `ansim notice draft --out notices/ --sender takedown@center.example`": "확인된 항목을 호스트별로 묶어 삭제 요청서 (.eml, 호스트마다 한국어 또는 영어) 와 규제 기관 일괄 신고용 CSV 를 만듭니다. 아무것도 보내지 않습니다.\n\n예: `ansim notice draft --out notices/ --sender takedown@center.example`",
    "Only items on this host.": "이 호스트의 항목만.",
    "Folder for .eml files and regulator.csv.": ".eml 파일과 regulator.csv 를 둘 폴더.",
    "Send drafted notices by SMTP; items become notice_sent only once the server took them.\n\nExample: `ansim notice send --smtp smtp+starttls://user:pass@mail.center.example`": "작성한 삭제 요청을 SMTP 로 보냅니다. 서버가 받은 뒤에야 항목이 notice_sent 가 됩니다.\n\n예: `ansim notice send --smtp smtp+starttls://user:pass@mail.center.example`",
    "Only notices to this host.": "이 호스트에 보낼 요청만.",
    "List removal notices, newest first.\n\nExample: `ansim notice list --status sending` (notices an interrupted send left behind)": "삭제 요청 목록, 최신순.\n\n예: `ansim notice list --status sending` (중단된 발송이 남긴 요청)",
    "Only this status (drafted, sending, sent, failed, ...).": "이 상태만 (drafted, sending, sent, failed, ...).",
    "Settle a notice an interrupted `notice send` left in `sending`.\n\nDelivered: its items move to notice_sent. Not delivered: it becomes failed and the next\n`notice send` retries it. Audited either way.\n\nExample: `ansim notice settle N-2026-00007 --not-delivered`": "중단된 `notice send` 가 `sending` 으로 남긴 요청을 정리합니다.\n\n전달됨: 항목이 notice_sent 로 옮겨 갑니다. 전달 안 됨: 요청이 failed 가 되고 다음 `notice send` 가 다시 보냅니다. 어느 쪽이든 감사 기록에 남습니다.\n\n예: `ansim notice settle N-2026-00007 --not-delivered`",
    "The notice, e.g. N-2026-00001.": "요청서, 예: N-2026-00001.",
    "What the mail server's log (or the host's reply) says happened.": "메일 서버 로그 (또는 호스트의 회신) 에 따른 실제 결과.",
    "Crawl from seed URLs: fetch pages (robots.txt, politeness, SSRF guard), fingerprint\nevery image/video/audio and page text, queue matches with sealed WARC evidence.\n\nThe frontier lives in the store: after any interruption (even kill -9) `--resume`\ncontinues without losing or duplicating anything. A log file is written per run.\n\nExamples: `ansim crawl run --seeds https://forum.example/ --max-pages 500`,\n`ansim crawl run --seeds seeds.txt --scope allow-list --allow-host img.example`,\n`ansim crawl run --resume --json`": "시작 URL 에서 수집합니다: 페이지를 가져와 (robots.txt, 예의 지키기, SSRF 방지) 모든 이미지/영상/음성과 페이지 텍스트의 지문을 만들고, 일치하면 봉인된 WARC 증거와 함께 대기열에 올립니다.\n\n수집 대기 목록은 저장소에 있습니다: 어떤 중단 뒤에도 (kill -9 까지) `--resume` 이 잃거나 겹치는 것 없이 이어 갑니다. 실행마다 로그 파일을 남깁니다.\n\n예: `ansim crawl run --seeds https://forum.example/ --max-pages 500`, `ansim crawl run --seeds seeds.txt --scope allow-list --allow-host img.example`, `ansim crawl run --resume --json`",
    "Seed URLs, or files of URLs.": "시작 URL, 또는 URL 목록 파일.",
    "Stop after this many pages.": "이만큼의 페이지 뒤에 멈춥니다.",
    "Links followed from the seeds.": "시작 URL 에서 따라가는 링크 깊이.",
    "same-site or allow-list.": "same-site 또는 allow-list.",
    "Host (and subdomains) in scope.": "수집 범위에 넣을 호스트 (하위 도메인 포함).",
    "Host whose robots.txt is overridden (logged).": "robots.txt 를 무시할 호스트 (로그에 남음).",
    "Continue the last unfinished crawl.": "끝나지 않은 마지막 수집을 이어 갑니다.",
    "Minimum seconds between requests to a host.": "한 호스트에 보내는 요청 사이의 최소 초.",
    "Parallel requests per host.": "호스트당 동시 요청 수.",
    "Pages in flight at once.": "동시에 처리하는 페이지 수.",
    "Fingerprinting processes (0: one per CPU, 1: in-process).": "지문 생성 프로세스 수 (0: CPU 마다 하나, 1: 같은 프로세스 안에서).",
    "Cap per response, MiB.": "응답 하나의 상한, MiB.",
    "Cap on bytes fetched per crawl, GiB.": "수집 한 번에 가져오는 바이트 상한, GiB.",
    "Local-feature verification of crawled images: all (as `ansim scan`; features kept, so a later retro-hunt verifies crops), triage (only images with a candidate that PDQ or the descriptor leave open now), off (PDQ and descriptor decide).": "수집한 이미지의 국소 특징 검증: all (`ansim scan` 처럼; 특징을 보관해 나중의 소급 검색이 잘린 사본도 검증), triage (PDQ 나 기술자가 지금 판단하지 못한 후보가 있는 이미지만), off (PDQ 와 기술자가 결정).",
    "Decrypt one evidence bundle (listed by `ansim queue show ID`) for police or lawyers:\nthe WARC file and its manifest of SHA-256 digests, fetch times and resolved IPs.\nEvery digest is checked on the way out; the export is audited.\n\nExample: `ansim evidence export 3 ~/handover/C-2026-0001/`": "증거 묶음 하나 (`ansim queue show ID` 에 나옴) 를 경찰이나 변호사에게 넘기려고 복호화합니다: WARC 파일과, SHA-256 다이제스트, 가져온 시각, 확인된 IP 를 담은 목록. 내보낼 때 모든 다이제스트를 검사하고, 내보내기는 감사 기록에 남습니다.\n\n예: `ansim evidence export 3 ~/handover/C-2026-0001/`",
    "Folder for the WARC file and its manifest.": "WARC 파일과 그 목록을 둘 폴더.",
    "Check the whole audit chain; exits 1 if any row was edited, deleted or reordered.": "감사 기록 체인 전체를 검사합니다. 고치거나 지우거나 순서를 바꾼 행이 있으면 1 로 끝납니다.",
    "Recreate every index from the store (the store is the source of truth).": "저장소에서 모든 색인을 다시 만듭니다 (저장소가 기준입니다).",
    "Entries per index, after checking each against the store.": "색인마다 저장소와 맞춰 본 뒤의 항목 수.",
}
