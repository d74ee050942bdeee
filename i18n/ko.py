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
    "#{id} sealed {at}, {records} WARC records": "#{id} {at} 봉인, WARC 레코드 {records}개",
    "{digest} (verified)": "{digest} (검증됨)",
    "{media} ({hashed} fingerprinted, {duplicate} duplicate content)": (
        "{media}개 (지문 생성 {hashed}개, 중복 내용 {duplicate}개)"
    ),
    "{hours:.1f} h": "{hours:.1f}시간",
    "{days:.1f} days": "{days:.1f}일",
    "from the start": "처음부터",
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
}
