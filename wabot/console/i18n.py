"""The console's words, Vietnamese first and English by a switch (the `lang` cookie)."""

from __future__ import annotations

from typing import Literal

__all__ = ["LANGS", "Lang", "words"]

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")

_WORDS: dict[str, tuple[str, str]] = {
    "console": ("Bảng điều khiển", "Console"),
    "inbox": ("Hộp chờ", "Inbox"),
    "customers": ("Khách hàng", "Customers"),
    "flows": ("Kịch bản", "Flows"),
    "simulator": ("Thử bot", "Simulator"),
    "numbers": ("Số liệu", "Numbers"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "user": ("Tên đăng nhập", "User name"),
    "password": ("Mật khẩu", "Password"),
    "switch": ("English", "Tiếng Việt"),
    "waiting_none": ("Không có khách nào đang chờ nhân viên.", "Nobody is waiting for a person."),
    "waiting_for": ("chờ", "waiting"),
    "min": ("phút", "min"),
    "reason": ("Lý do", "Reason"),
    "reply": ("Trả lời", "Reply"),
    "send": ("Gửi", "Send"),
    "reply_placeholder": ("Nhập câu trả lời cho khách…", "Type the answer to the customer…"),
    "quick": ("Trả lời nhanh", "Quick answers"),
    "resume": ("Trả lại cho bot", "Give back to the bot"),
    "take_over": ("Nhận cuộc trò chuyện (bot tạm dừng)", "Take over (the bot pauses)"),
    "window_open": ("Cửa sổ 24 giờ mở đến", "The 24-hour window is open until"),
    "window_closed": (
        "Đã quá 24 giờ từ tin nhắn cuối của khách: WhatsApp chỉ cho gửi mẫu tin đã được duyệt.",
        "More than 24 hours since the customer last wrote: WhatsApp allows only approved templates.",
    ),
    "window_never": ("Khách chưa từng nhắn: chỉ gửi được mẫu tin đã duyệt.",
                     "The customer never wrote: only approved templates can be sent."),
    "templates": ("Mẫu tin đã duyệt", "Approved templates"),
    "no_templates": ("Chưa có mẫu tin nào trong phần replies: của kịch bản.",
                     "No template messages in the flows' replies: section."),
    "state": ("Trạng thái", "State"),
    "flow": ("Kịch bản", "Flow"),
    "step": ("Bước", "Step"),
    "vars": ("Biến đã lưu", "Saved variables"),
    "opted_out": ("Đã từ chối nhận tin", "Opted out"),
    "opted_in": ("Nhận tin", "Receives messages"),
    "search": ("Tìm", "Search"),
    "search_placeholder": ("Tên, số điện thoại hoặc thông tin đã lưu", "Name, phone number or saved detail"),
    "no_results": ("Không tìm thấy khách nào.", "No customer found."),
    "export": ("Xuất", "Export"),
    "problems": ("Lỗi và cảnh báo", "Problems"),
    "no_problems": ("Không có lỗi nào.", "No problems."),
    "sim_placeholder": ("Nhắn như khách hàng…", "Write as a customer…"),
    "sim_restart": ("Bắt đầu lại", "Start over"),
    "sim_live": ("Gọi http thật", "Live http steps"),
    "sim_handoff": ("(Bot chuyển cho nhân viên: {reason})", "(The bot hands over to a person: {reason})"),
    "by_day": ("Tin nhắn theo ngày", "Messages per day"),
    "day": ("Ngày", "Day"),
    "in": ("Nhận", "In"),
    "out": ("Gửi", "Out"),
    "active": ("Đang trò chuyện", "Active conversations"),
    "waiting": ("Đang chờ nhân viên", "Waiting for a person"),
    "longest_wait": ("Chờ lâu nhất", "Longest wait"),
    "average_wait": ("Chờ trung bình", "Average wait"),
    "given_back": ("Đã trả lại cho bot", "Given back to the bot"),
    "conversations": ("Tổng số cuộc trò chuyện", "Conversations stored"),
    "failed": ("Tin gửi lỗi (lý do của Meta)", "Failed replies (Meta's reasons)"),
    "none": ("Không có.", "None."),
    "funnel": ("Phễu theo kịch bản", "Funnel per flow"),
    "reached": ("Đã tới", "Reached"),
    "stopped": ("Dừng ở đây", "Stopped here"),
    "not_understood": ("Câu bot không hiểu", "Texts the bot did not understand"),
    "times": ("Số lần", "Times"),
    "where": ("Ở bước", "At step"),
    "customer": ("Khách", "Customer"),
    "bot": ("Bot", "Bot"),
    "by": ("bởi", "by"),
    "no_account": (
        "Bảng điều khiển chưa bật: hãy tạo tài khoản trước bằng lệnh `wabot user add TÊN`.",
        "The console is off until an account exists: create one with `wabot user add NAME`.",
    ),
    "wrong": ("Sai tên đăng nhập hoặc mật khẩu.", "Wrong user name or password."),
    "locked": ("Nhập sai quá nhiều lần. Thử lại sau {minutes} phút.",
               "Too many wrong passwords. Try again in {minutes} minutes."),
    "expired": ("Phiên đăng nhập đã hết hạn, vui lòng đăng nhập lại.", "Your session has ended; please sign in again."),
    "csrf": ("Biểu mẫu đã cũ hoặc đến từ trang khác. Hãy tải lại trang rồi thử lại.",
             "The form was stale or came from another site. Reload the page and try again."),
    "origin": ("Yêu cầu đến từ một trang web khác nên bị từ chối.", "Refused: the request came from another web site."),
    "not_found": ("Không có cuộc trò chuyện với {customer}.", "No conversation with {customer}."),
    "empty_reply": ("Câu trả lời đang trống.", "The answer is empty."),
    "nothing_to_give_back": ("{customer} không ở với nhân viên nên không có gì để trả lại.",
                             "{customer} is not with a person, so there is nothing to give back."),
    "admins_only": ("Chỉ quản trị viên (admin) mới làm được việc này.", "Only admins can do this."),
    "new_handoff": ("Khách mới chờ nhân viên", "New customer waiting"),
    "media_unknown": ("Không có tin nhắn nào của khách trong hộp thư mang tệp {id}.",
                      "No customer message in this shop's inbox carries the file {id}."),
    "media_gone": ("Meta không còn giữ tệp này (tệp khách gửi chỉ được giữ một thời gian). Hãy nhờ khách gửi lại.",
                   "Meta no longer keeps this file (files customers send are kept for a limited time). "
                   "Ask the customer to send it again."),
    "media_dry_run": ("wabot đang chạy thử (dry-run, chưa có WHATSAPP_TOKEN) nên không tải được tệp từ Meta.",
                      "wabot runs in dry-run (no WHATSAPP_TOKEN), so files cannot be fetched from Meta."),
    "media_too_large": ("Tệp quá lớn để xem ở đây: {why}.", "The file is too large to show here: {why}."),
}


def words(lang: Lang) -> dict[str, str]:
    """Every word of the console in `lang`."""
    index = LANGS.index(lang)
    return {key: pair[index] for key, pair in _WORDS.items()}
