//+------------------------------------------------------------------+
//| MT5BackOfficeEA.mq5 — the EA side of the MT5 back office's EA protocol (version 1).
//|
//| Beats on a timer: POST /api/ea/heartbeat with the account state, open positions, pending orders,
//| terminal info and the results of commands executed since the last beat; executes the commands
//| in the reply with CTrade; each command runs once: its id is remembered in a file and travels in
//| the order comment, and the EA looks for that comment among positions, orders and history before
//| trading (so a terminal restart or a resent command cannot repeat a trade).
//|
//| Install: copy to MQL5\Experts, compile in MetaEditor, attach to one chart per account, and add
//| the server's URL under Tools → Options → Expert Advisors → "Allow WebRequest for listed URL"
//| (it cannot be allowed from code). Inputs: server URL and the account's EA token.
//| WebRequest does not run in the Strategy Tester. This file is not compiled in the project's CI.
//+------------------------------------------------------------------+
#property copyright "MT5 back office"
#property version   "1.00"
#property strict

#include <Trade\Trade.mqh>

input string InpServerUrl   = "https://backoffice.example.com"; // server base URL (allow it in the options)
input string InpToken       = "";                               // EA token of this account (UUID)
input int    InpBeatMs      = 1000;                             // heartbeat interval (ms)
input int    InpTimeoutMs   = 5000;                             // WebRequest timeout (ms)
input long   InpMagic       = 20251122;                         // magic number of trades opened by commands
input int    InpMaxBackoffS = 30;                               // longest wait between failed beats (s)

#define PROTOCOL_VERSION 1
#define EA_VERSION "mq5-1.0"
#define LEDGER_FILE "MT5BackOfficeEA_ledger.txt"

CTrade   g_trade;
string   g_results = "";        // JSON objects (comma separated) not yet acknowledged by the server
string   g_doneIds[];           // command ids handled (persisted in LEDGER_FILE)
string   g_doneResults[];       // their result JSON, resent if the server asks again
int      g_failures = 0;
ulong    g_nextTry = 0;
bool     g_paused = false;

//--- tiny JSON reader: enough for the server's replies ------------------------------------------
class JsonReader
  {
public:
   string s;
   int    i;
   void   Init(const string text) { s = text; i = 0; }
   void   Ws() { while(i < StringLen(s)) { ushort c = StringGetCharacter(s, i); if(c==' '||c=='\n'||c=='\r'||c=='\t') i++; else break; } }
   ushort Peek() { Ws(); return (i < StringLen(s)) ? StringGetCharacter(s, i) : 0; }
   string Str()
     {
      string out = ""; Ws(); if(Peek() != '"') return out; i++;
      while(i < StringLen(s))
        {
         ushort c = StringGetCharacter(s, i++);
         if(c == '"') break;
         if(c == '\\') { ushort e = StringGetCharacter(s, i++); if(e=='n') out += "\n"; else if(e=='u') { out += ShortToString((ushort)StringToInteger("0x" + StringSubstr(s, i, 4))); i += 4; } else out += ShortToString(e); }
         else out += ShortToString(c);
        }
      return out;
     }
   // Returns the raw text of the next value (object, array, string, number, literal) and skips it.
   string Raw()
     {
      Ws(); int start = i; ushort c = Peek();
      if(c == '"') { Str(); return StringSubstr(s, start, i - start); }
      if(c == '{' || c == '[')
        {
         int depth = 0; bool inStr = false;
         while(i < StringLen(s))
           {
            ushort d = StringGetCharacter(s, i++);
            if(inStr) { if(d == '\\') i++; else if(d == '"') inStr = false; continue; }
            if(d == '"') inStr = true; else if(d == '{' || d == '[') depth++; else if(d == '}' || d == ']') { depth--; if(depth == 0) break; }
           }
         return StringSubstr(s, start, i - start);
        }
      while(i < StringLen(s)) { ushort d = StringGetCharacter(s, i); if(d==','||d=='}'||d==']'||d==' ') break; i++; }
      return StringSubstr(s, start, i - start);
     }
  };

// Value of key in a JSON object text (raw; strings keep their quotes), "" if absent.
string JsonGet(const string obj, const string key)
  {
   JsonReader r; r.Init(obj);
   if(r.Peek() != '{') return "";
   r.i++;
   while(r.Peek() != '}' && r.i < StringLen(r.s))
     {
      string k = r.Str(); r.Ws(); r.i++; // ':'
      string v = r.Raw();
      if(k == key) return v;
      if(r.Peek() == ',') r.i++;
     }
   return "";
  }

string Unquote(const string raw) { if(StringLen(raw) >= 2 && StringGetCharacter(raw, 0) == '"') { JsonReader r; r.Init(raw); return r.Str(); } return raw; }
double JsonNum(const string obj, const string key) { return StringToDouble(Unquote(JsonGet(obj, key))); }

// Items of a JSON array text.
int JsonItems(const string arr, string &items[])
  {
   ArrayResize(items, 0);
   JsonReader r; r.Init(arr);
   if(r.Peek() != '[') return 0;
   r.i++;
   while(r.Peek() != ']' && r.i < StringLen(r.s))
     {
      int n = ArraySize(items); ArrayResize(items, n + 1); items[n] = r.Raw();
      if(r.Peek() == ',') r.i++;
     }
   return ArraySize(items);
  }

string Esc(const string v) { string o = v; StringReplace(o, "\\", "\\\\"); StringReplace(o, "\"", "\\\""); return "\"" + o + "\""; }
string Num(const double v, const int digits = 8) { return "\"" + DoubleToString(v, digits) + "\""; }

//--- ledger of handled commands -----------------------------------------------------------------
void LedgerLoad()
  {
   int h = FileOpen(LEDGER_FILE, FILE_READ | FILE_TXT | FILE_ANSI);
   if(h == INVALID_HANDLE) return;
   while(!FileIsEnding(h))
     {
      string line = FileReadString(h);
      int sep = StringFind(line, "\t");
      if(sep <= 0) continue;
      int n = ArraySize(g_doneIds); ArrayResize(g_doneIds, n + 1); ArrayResize(g_doneResults, n + 1);
      g_doneIds[n] = StringSubstr(line, 0, sep); g_doneResults[n] = StringSubstr(line, sep + 1);
     }
   FileClose(h);
  }

void LedgerAdd(const string id, const string result)
  {
   int n = ArraySize(g_doneIds); ArrayResize(g_doneIds, n + 1); ArrayResize(g_doneResults, n + 1);
   g_doneIds[n] = id; g_doneResults[n] = result;
   int h = FileOpen(LEDGER_FILE, FILE_READ | FILE_WRITE | FILE_TXT | FILE_ANSI);
   if(h == INVALID_HANDLE) return;
   FileSeek(h, 0, SEEK_END); FileWriteString(h, id + "\t" + result + "\n"); FileClose(h);
  }

int LedgerFind(const string id) { for(int k = ArraySize(g_doneIds) - 1; k >= 0; k--) if(g_doneIds[k] == id) return k; return -1; }

//--- state message -------------------------------------------------------------------------------
string StateJson()
  {
   string j = "{\"v\":" + IntegerToString(PROTOCOL_VERSION) + ",\"ea_version\":\"" + EA_VERSION + "\"";
   j += ",\"login\":" + IntegerToString(AccountInfoInteger(ACCOUNT_LOGIN));
   j += ",\"server_time\":" + IntegerToString((long)TimeTradeServer());
   j += ",\"account\":{\"balance\":" + Num(AccountInfoDouble(ACCOUNT_BALANCE), 2) + ",\"credit\":" + Num(AccountInfoDouble(ACCOUNT_CREDIT), 2)
        + ",\"equity\":" + Num(AccountInfoDouble(ACCOUNT_EQUITY), 2) + ",\"margin\":" + Num(AccountInfoDouble(ACCOUNT_MARGIN), 2)
        + ",\"margin_free\":" + Num(AccountInfoDouble(ACCOUNT_MARGIN_FREE), 2) + ",\"leverage\":" + IntegerToString(AccountInfoInteger(ACCOUNT_LEVERAGE)) + "}";
   j += ",\"positions\":[";
   for(int k = 0; k < PositionsTotal(); k++)
     {
      ulong t = PositionGetTicket(k); if(t == 0) continue;
      if(k > 0) j += ",";
      j += "{\"ticket\":" + IntegerToString((long)t) + ",\"symbol\":" + Esc(PositionGetString(POSITION_SYMBOL))
           + ",\"type\":" + IntegerToString(PositionGetInteger(POSITION_TYPE)) + ",\"volume\":" + Num(PositionGetDouble(POSITION_VOLUME))
           + ",\"price_open\":" + Num(PositionGetDouble(POSITION_PRICE_OPEN)) + ",\"sl\":" + Num(PositionGetDouble(POSITION_SL))
           + ",\"tp\":" + Num(PositionGetDouble(POSITION_TP)) + ",\"magic\":" + IntegerToString(PositionGetInteger(POSITION_MAGIC))
           + ",\"comment\":" + Esc(PositionGetString(POSITION_COMMENT)) + ",\"profit\":" + Num(PositionGetDouble(POSITION_PROFIT), 2)
           + ",\"time\":" + IntegerToString(PositionGetInteger(POSITION_TIME)) + ",\"identifier\":" + IntegerToString(PositionGetInteger(POSITION_IDENTIFIER)) + "}";
     }
   j += "],\"orders\":[";
   for(int k = 0; k < OrdersTotal(); k++)
     {
      ulong t = OrderGetTicket(k); if(t == 0) continue;
      if(k > 0) j += ",";
      j += "{\"ticket\":" + IntegerToString((long)t) + ",\"symbol\":" + Esc(OrderGetString(ORDER_SYMBOL))
           + ",\"type\":" + IntegerToString(OrderGetInteger(ORDER_TYPE)) + ",\"volume\":" + Num(OrderGetDouble(ORDER_VOLUME_CURRENT))
           + ",\"price_open\":" + Num(OrderGetDouble(ORDER_PRICE_OPEN)) + ",\"sl\":" + Num(OrderGetDouble(ORDER_SL))
           + ",\"tp\":" + Num(OrderGetDouble(ORDER_TP)) + ",\"magic\":" + IntegerToString(OrderGetInteger(ORDER_MAGIC))
           + ",\"comment\":" + Esc(OrderGetString(ORDER_COMMENT)) + ",\"time_setup\":" + IntegerToString(OrderGetInteger(ORDER_TIME_SETUP)) + "}";
     }
   j += "],\"terminal\":{\"build\":" + IntegerToString(TerminalInfoInteger(TERMINAL_BUILD))
        + ",\"connected\":" + (TerminalInfoInteger(TERMINAL_CONNECTED) ? "true" : "false")
        + ",\"trade_allowed\":" + (TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) ? "true" : "false") + "}";
   j += ",\"paused\":" + (g_paused ? "true" : "false");
   j += ",\"results\":[" + g_results + "]}";
   return j;
  }

//--- execution -----------------------------------------------------------------------------------
string Result(const string id, const bool ok, const long retcode, const string message, const string extra = "")
  {
   return "{\"id\":\"" + id + "\",\"status\":\"" + (ok ? "executed" : "failed") + "\",\"retcode\":" + IntegerToString(retcode)
          + ",\"message\":" + Esc(message) + ",\"result\":{" + extra + "}}";
  }

string TradeResult(const string id)
  {
   long rc = (long)g_trade.ResultRetcode();
   bool ok = (rc == TRADE_RETCODE_DONE || rc == TRADE_RETCODE_PLACED || rc == TRADE_RETCODE_DONE_PARTIAL);
   string extra = "\"order\":" + IntegerToString((long)g_trade.ResultOrder()) + ",\"deal\":" + IntegerToString((long)g_trade.ResultDeal());
   if(ok) extra += ",\"price\":" + Num(g_trade.ResultPrice()) + ",\"volume\":" + Num(g_trade.ResultVolume());
   if(ok && g_trade.ResultDeal() > 0 && HistoryDealSelect(g_trade.ResultDeal()))
      extra += ",\"position\":" + IntegerToString(HistoryDealGetInteger(g_trade.ResultDeal(), DEAL_POSITION_ID));
   return Result(id, ok, rc, g_trade.ResultRetcodeDescription(), extra);
  }

// A trade already carrying this command's comment (executed before a restart or a lost reply).
string AlreadyDone(const string id, const string comment)
  {
   for(int k = 0; k < PositionsTotal(); k++)
      if(PositionGetTicket(k) > 0 && PositionGetString(POSITION_COMMENT) == comment)
         return Result(id, true, TRADE_RETCODE_DONE, "already executed", "\"position\":" + IntegerToString(PositionGetInteger(POSITION_TICKET)) + ",\"duplicate\":true");
   for(int k = 0; k < OrdersTotal(); k++)
      if(OrderGetTicket(k) > 0 && OrderGetString(ORDER_COMMENT) == comment)
         return Result(id, true, TRADE_RETCODE_PLACED, "already placed", "\"order\":" + IntegerToString(OrderGetInteger(ORDER_TICKET)) + ",\"duplicate\":true");
   if(HistorySelect(TimeCurrent() - 7 * 86400, TimeCurrent() + 86400))
      for(int k = HistoryDealsTotal() - 1; k >= 0; k--)
        {
         ulong d = HistoryDealGetTicket(k);
         if(d > 0 && HistoryDealGetString(d, DEAL_COMMENT) == comment)
            return Result(id, true, TRADE_RETCODE_DONE, "already executed", "\"deal\":" + IntegerToString((long)d) + ",\"position\":" + IntegerToString(HistoryDealGetInteger(d, DEAL_POSITION_ID)) + ",\"duplicate\":true");
        }
   return "";
  }

string Execute(const string cmd)
  {
   string id = Unquote(JsonGet(cmd, "id")), kind = Unquote(JsonGet(cmd, "kind")), comment = Unquote(JsonGet(cmd, "comment"));
   string p = JsonGet(cmd, "params");
   string exp = JsonGet(cmd, "expires_at");
   if(exp != "" && exp != "null" && (double)TimeGMT() > StringToDouble(exp))
      return Result(id, false, 0, "expired before execution");
   if(kind == "pause")  { g_paused = true;  return Result(id, true, 0, "paused"); }
   if(kind == "resume") { g_paused = false; return Result(id, true, 0, "resumed"); }
   // Paused: nothing opens (refused, not held: a copy that waited for the resume would open at a stale price);
   // closing and modifying go on.
   if(g_paused && (kind == "open_market" || kind == "place_pending"))
      return Result(id, false, TRADE_RETCODE_TRADE_DISABLED, "paused: opens nothing until resumed");
   if(kind == "open_market" || kind == "place_pending" || kind == "close" || kind == "close_partial" || kind == "close_all")
     { string prev = AlreadyDone(id, comment); if(prev != "") return prev; }
   string magic = JsonGet(p, "magic");
   g_trade.SetExpertMagicNumber(magic != "" ? (ulong)StringToInteger(magic) : (ulong)InpMagic);
   string dev = JsonGet(p, "deviation");
   g_trade.SetDeviationInPoints(dev != "" ? (ulong)StringToInteger(dev) : 10);
   string symbol = Unquote(JsonGet(p, "symbol"));
   if(symbol != "") g_trade.SetTypeFillingBySymbol(symbol);
   ulong ticket = (ulong)StringToInteger(JsonGet(p, "ticket"));
   if(kind == "open_market")
     {
      ENUM_ORDER_TYPE type = Unquote(JsonGet(p, "side")) == "buy" ? ORDER_TYPE_BUY : ORDER_TYPE_SELL;
      g_trade.PositionOpen(symbol, type, JsonNum(p, "volume"), 0, JsonNum(p, "sl"), JsonNum(p, "tp"), comment);
     }
   else if(kind == "place_pending")
     {
      string e = JsonGet(p, "expiration");
      g_trade.OrderOpen(symbol, (ENUM_ORDER_TYPE)StringToInteger(JsonGet(p, "type")), JsonNum(p, "volume"), 0, JsonNum(p, "price"),
                        JsonNum(p, "sl"), JsonNum(p, "tp"), e != "" ? ORDER_TIME_SPECIFIED : ORDER_TIME_GTC, (datetime)StringToInteger(e), comment);
     }
   else if(kind == "close")          g_trade.PositionClose(ticket);
   else if(kind == "close_partial")  g_trade.PositionClosePartial(ticket, JsonNum(p, "volume"));
   else if(kind == "modify_sltp")    g_trade.PositionModify(ticket, JsonNum(p, "sl"), JsonNum(p, "tp"));
   else if(kind == "modify_pending") g_trade.OrderModify(ticket, JsonNum(p, "price"), JsonNum(p, "sl"), JsonNum(p, "tp"), ORDER_TIME_GTC, 0);
   else if(kind == "cancel_pending") g_trade.OrderDelete(ticket);
   else if(kind == "close_all")
     {
      int closed = 0, failed = 0;
      for(int k = PositionsTotal() - 1; k >= 0; k--)
        {
         ulong t = PositionGetTicket(k);
         if(t == 0 || (symbol != "" && PositionGetString(POSITION_SYMBOL) != symbol)) continue;
         if(g_trade.PositionClose(t) && g_trade.ResultRetcode() == TRADE_RETCODE_DONE) closed++; else failed++;
        }
      return Result(id, failed == 0, failed == 0 ? TRADE_RETCODE_DONE : (long)g_trade.ResultRetcode(),
                    "closed " + IntegerToString(closed) + " of " + IntegerToString(closed + failed));
     }
   else return Result(id, false, TRADE_RETCODE_INVALID, "unsupported command " + kind);
   string res = TradeResult(id);
   if(kind == "close" || kind == "close_partial" || kind == "modify_sltp")
      StringReplace(res, "\"result\":{", "\"result\":{\"position\":" + IntegerToString((long)ticket) + ",");
   return res;
  }

//--- transport -----------------------------------------------------------------------------------
int Post(const string path, const string body, string &reply)
  {
   char data[], result[];
   string headers = "Content-Type: application/json\r\nAuthorization: Bearer " + InpToken + "\r\n", resultHeaders;
   int n = StringToCharArray(body, data, 0, WHOLE_ARRAY, CP_UTF8);
   ArrayResize(data, n - 1); // drop the terminating NUL
   ResetLastError();
   int status = WebRequest("POST", InpServerUrl + path, headers, InpTimeoutMs, data, result, resultHeaders);
   reply = CharArrayToString(result, 0, WHOLE_ARRAY, CP_UTF8);
   if(status == -1) PrintFormat("WebRequest failed (%d). Is %s allowed in Tools > Options > Expert Advisors?", GetLastError(), InpServerUrl);
   return status;
  }

void Beat()
  {
   string reply;
   int status = Post("/api/ea/heartbeat", StateJson(), reply);
   if(status != 200)
     {
      g_failures++;
      int wait = (int)MathMin(InpMaxBackoffS * 1000, 500 * MathPow(2, MathMin(g_failures, 6)));
      g_nextTry = GetTickCount64() + (ulong)(wait / 2 + MathRand() % (wait / 2 + 1)); // jittered backoff
      if(status == 401) Print("EA token refused: check the token input (rotated or revoked?)");
      else if(status >= 400 && status < 500) PrintFormat("heartbeat refused (%d): %s", status, reply);
      return;
     }
   g_failures = 0;
   g_results = "";  // delivered with this beat; the server dedupes repeats by command id
   string status_text = Unquote(JsonGet(reply, "status"));
   if(status_text == "denied") { PrintFormat("server: %s", Unquote(JsonGet(reply, "reason"))); return; }
   string commands[];
   int count = JsonItems(JsonGet(reply, "commands"), commands);
   for(int k = 0; k < count; k++)
     {
      string id = Unquote(JsonGet(commands[k], "id"));
      int known = LedgerFind(id);
      string res = known >= 0 ? g_doneResults[known] : Execute(commands[k]);
      if(known < 0) LedgerAdd(id, res);
      g_results += (g_results == "" ? "" : ",") + res;
     }
  }

int OnInit()
  {
   if(StringLen(InpToken) != 36) { Print("set the EA token input (a UUID from the back office)"); return INIT_PARAMETERS_INCORRECT; }
   LedgerLoad();
   MathSrand((uint)GetTickCount());
   EventSetMillisecondTimer(MathMax(100, InpBeatMs));
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason) { EventKillTimer(); }

void OnTimer()
  {
   if(GetTickCount64() < g_nextTry) return;
   Beat();
  }
//+------------------------------------------------------------------+
