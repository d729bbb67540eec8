-- Argo CD health check for KubeVela Applications (core.oam.dev/v1beta1 Application).
--
--   Healthy      phase running: the workflow finished and the components are healthy
--   Degraded     workflowFailed, workflowTerminated, unhealthy; a step that failed for good in a
--                suspended workflow (feature EnableSuspendOnFailure); a False condition while the
--                controller parses or renders, unless it is a write conflict (retried at once:
--                Progressing). Message: the failed step and its message.
--   Suspended    workflowSuspending: a suspend step, a deploy step with auto: false, or
--                `vela workflow suspend`; resume with `vela workflow resume`
--   Progressing  everything else, never Unknown: no status yet, a generation the controller has
--                not observed, runningWorkflow (message: the waiting or retrying step), deleting
--
-- Runs without useOpenLibs: Argo CD gives argocd-cm scripts only the base and table libraries,
-- so there is no `string` or `math` and no method call on a string. Messages are shortened by
-- comparing prefixes (see short()).
-- Status fields: kubevela/kubevela apis/core.oam.dev/common/types.go (AppStatus) and
-- kubevela/workflow api/v1alpha1/types.go (StepStatus); phases are set in
-- pkg/controller/core.oam.dev/v1beta1/application/application_controller.go.
-- Tests: argocd/health_test.yaml on objects recorded from the real controller (argocd/testdata,
-- scripts/record-argocd-statuses.sh).

local MAX_MESSAGE = 200

-- One-byte strings by byte value: the only way to rebuild a string without string.sub.
local BYTE = {
  [0] = "\0", "\1", "\2", "\3", "\4", "\5", "\6", "\7", "\8", "\9", "\10", "\11", "\12", "\13", "\14", "\15",
  "\16", "\17", "\18", "\19", "\20", "\21", "\22", "\23", "\24", "\25", "\26", "\27", "\28", "\29", "\30", "\31",
  "\32", "\33", "\34", "\35", "\36", "\37", "\38", "\39", "\40", "\41", "\42", "\43", "\44", "\45", "\46", "\47",
  "\48", "\49", "\50", "\51", "\52", "\53", "\54", "\55", "\56", "\57", "\58", "\59", "\60", "\61", "\62", "\63",
  "\64", "\65", "\66", "\67", "\68", "\69", "\70", "\71", "\72", "\73", "\74", "\75", "\76", "\77", "\78", "\79",
  "\80", "\81", "\82", "\83", "\84", "\85", "\86", "\87", "\88", "\89", "\90", "\91", "\92", "\93", "\94", "\95",
  "\96", "\97", "\98", "\99", "\100", "\101", "\102", "\103", "\104", "\105", "\106", "\107", "\108", "\109", "\110", "\111",
  "\112", "\113", "\114", "\115", "\116", "\117", "\118", "\119", "\120", "\121", "\122", "\123", "\124", "\125", "\126", "\127",
  "\128", "\129", "\130", "\131", "\132", "\133", "\134", "\135", "\136", "\137", "\138", "\139", "\140", "\141", "\142", "\143",
  "\144", "\145", "\146", "\147", "\148", "\149", "\150", "\151", "\152", "\153", "\154", "\155", "\156", "\157", "\158", "\159",
  "\160", "\161", "\162", "\163", "\164", "\165", "\166", "\167", "\168", "\169", "\170", "\171", "\172", "\173", "\174", "\175",
  "\176", "\177", "\178", "\179", "\180", "\181", "\182", "\183", "\184", "\185", "\186", "\187", "\188", "\189", "\190", "\191",
  "\192", "\193", "\194", "\195", "\196", "\197", "\198", "\199", "\200", "\201", "\202", "\203", "\204", "\205", "\206", "\207",
  "\208", "\209", "\210", "\211", "\212", "\213", "\214", "\215", "\216", "\217", "\218", "\219", "\220", "\221", "\222", "\223",
  "\224", "\225", "\226", "\227", "\228", "\229", "\230", "\231", "\232", "\233", "\234", "\235", "\236", "\237", "\238", "\239",
  "\240", "\241", "\242", "\243", "\244", "\245", "\246", "\247", "\248", "\249", "\250", "\251", "\252", "\253", "\254", "\255",
}

-- KubeVela appends the CUE value of a failed provider call after this: " (value:".
local CUT = {32, 40, 118, 97, 108, 117, 101, 58}

-- The message KubeVela v1.10 puts on every suspended step (the step's own message is dropped).
local GENERIC_SUSPEND = "Suspended by field suspend"
-- kubevela/workflow pkg/types: the workflow message when EnableSuspendOnFailure suspends it.
local SUSPENDED_ON_FAILURE = "The workflow suspends automatically because the failed times of steps have reached the limit"

local function result(status, message)
  return {status = status, message = message or ""}
end

-- short(s): the first line of s, cut before " (value:", at most MAX_MESSAGE bytes ("..." when
-- cut). Byte k is found by binary search: prefix .. BYTE[b] <= s holds exactly for b <= s[k].
local function short(s)
  if type(s) ~= "string" then
    return ""
  end
  local n, bytes, prefix, cut = #s, {}, "", false
  local i = 0
  while i < n do
    if i >= MAX_MESSAGE then
      cut = true
      break
    end
    local lo, hi = 0, 255
    while lo < hi do
      local mid = (lo + hi + 1) / 2
      mid = mid - mid % 1
      if prefix .. BYTE[mid] <= s then
        lo = mid
      else
        hi = mid - 1
      end
    end
    if lo == 10 or lo == 13 then
      break
    end
    i = i + 1
    bytes[i] = lo
    prefix = prefix .. BYTE[lo]
    if i >= #CUT then
      local marker = true
      for k = 1, #CUT do
        if bytes[i - #CUT + k] ~= CUT[k] then
          marker = false
          break
        end
      end
      if marker then
        i = i - #CUT
        break
      end
    end
  end
  if cut then
    -- do not end inside a UTF-8 sequence
    while i > 0 and bytes[i] >= 128 and bytes[i] < 192 do
      i = i - 1
    end
    if i > 0 and bytes[i] >= 192 then
      i = i - 1
    end
  end
  while i > 0 and (bytes[i] == 32 or bytes[i] == 9) do
    i = i - 1
  end
  local chars = {}
  for k = 1, i do
    chars[k] = BYTE[bytes[k]]
  end
  if cut then
    chars[i + 1] = "..."
  end
  return table.concat(chars)
end

-- Steps in order, each step-group's sub-steps before the group: {step = ..., name = "group/sub"}.
local function flatten(steps)
  local list = {}
  if type(steps) ~= "table" then
    return list
  end
  for _, step in ipairs(steps) do
    if type(step) == "table" then
      if type(step.subSteps) == "table" then
        for _, sub in ipairs(step.subSteps) do
          if type(sub) == "table" then
            table.insert(list, {step = sub, name = tostring(step.name) .. "/" .. tostring(sub.name)})
          end
        end
      end
      table.insert(list, {step = step, name = tostring(step.name)})
    end
  end
  return list
end

local function find(list, matches)
  for _, entry in ipairs(list) do
    if matches(entry.step) then
      return entry
    end
  end
  return nil
end

-- "step NAME (TYPE) WHAT: MESSAGE"
local function describe(entry, what)
  local text = "step " .. entry.name
  if type(entry.step.type) == "string" and entry.step.type ~= "" then
    text = text .. " (" .. entry.step.type .. ")"
  end
  if what ~= "" then
    text = text .. " " .. what
  end
  local message = entry.step.message
  if message ~= GENERIC_SUSPEND then
    message = short(message)
    if message ~= "" then
      text = text .. ": " .. message
    end
  end
  return text
end

local function failedFor(reason)
  if reason == "FailedAfterRetries" then
    return "failed after retries"
  elseif reason == "Timeout" then
    return "timed out"
  end
  return "failed"
end

local function isFailed(step)
  return step.phase == "failed" and step.reason ~= "Terminate"
end

-- failed for good: not a failure KubeVela is still retrying (reason Execute)
local function isFinallyFailed(step)
  return step.phase == "failed" and step.reason ~= "Terminate" and step.reason ~= "Execute"
end

local function isActive(step)
  return step.phase == "running" or step.phase == "pending" or step.phase == "suspending"
end

-- Kubernetes' message for a 409 Conflict (apimachinery NewConflict): a write that raced another.
local CONFLICT = "Operation cannot be fulfilled on "

-- Whether s begins with p, by comparison alone: p <= s < p .. "\255" holds exactly then.
local function startsWith(s, p)
  return type(s) == "string" and s >= p and s < p .. BYTE[255]
end

-- The first False condition as "Type: message", and whether it is a write conflict, which the
-- controller retries at once (it raced its own or another writer's update of the same object).
local function falseCondition(status)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    -- Synced is never reset after an error (application_controller.go), so it is skipped
    if type(c) == "table" and c.status == "False" and c.type ~= "Synced" then
      return tostring(c.type) .. ": " .. short(c.message or c.reason), startsWith(c.message, CONFLICT)
    end
  end
  return nil
end

local function unhealthyServices(status)
  local names, count = {}, 0
  if type(status.services) == "table" then
    for _, svc in ipairs(status.services) do
      if type(svc) == "table" then
        local name = tostring(svc.name)
        if svc.healthy ~= true then
          count = count + 1
          if count <= 3 then
            local m = short(svc.message)
            table.insert(names, m ~= "" and (name .. " (" .. m .. ")") or name)
          end
        end
        if type(svc.traits) == "table" then
          for _, trait in ipairs(svc.traits) do
            if type(trait) == "table" and trait.healthy == false then
              count = count + 1
              if count <= 3 then
                table.insert(names, name .. " trait " .. tostring(trait.type))
              end
            end
          end
        end
      end
    end
  end
  if count == 0 then
    return "components unhealthy"
  end
  local text = "unhealthy: " .. table.concat(names, ", ")
  if count > 3 then
    text = text .. " and " .. tostring(count - 3) .. " more"
  end
  return text
end

-- wasmCloud's wadm operator uses the same group and kind (core.oam.dev/Application) with
-- status.phase instead of status.status; one script must serve both.
local function wadm(status)
  local phase = status.phase
  if phase == "Deployed" then
    return result("Healthy", "")
  elseif phase == "Failed" then
    local message = short(status.message)
    return result("Degraded", message ~= "" and ("wadm: " .. message) or "wadm: Failed")
  elseif phase == "Undeployed" then
    return result("Suspended", "wadm: Undeployed")
  end
  return result("Progressing", "wadm: " .. tostring(phase))
end

local function health(obj)
  local status = obj.status
  if type(status) ~= "table" or (status.status == nil and status.phase == nil) then
    return result("Progressing", "waiting for the KubeVela controller")
  end
  if status.status == nil then
    return wadm(status)
  end

  local generation = type(obj.metadata) == "table" and tonumber(obj.metadata.generation) or nil
  local observed = tonumber(status.observedGeneration)
  if generation ~= nil and observed ~= nil and observed < generation then
    return result("Progressing", "waiting for the controller to observe generation " .. tostring(generation))
  end

  local phase = status.status
  local workflow = type(status.workflow) == "table" and status.workflow or {}
  local steps = flatten(workflow.steps)

  if phase == "running" then
    if workflow.finished == false then
      return result("Progressing", "workflow running")
    end
    return result("Healthy", "")
  end

  if phase == "workflowFailed" then
    local failed = find(steps, isFailed)
    if failed ~= nil then
      return result("Degraded", describe(failed, failedFor(failed.step.reason)))
    end
    local message = short(workflow.message)
    return result("Degraded", message ~= "" and ("workflow failed: " .. message) or "workflow failed")
  end

  if phase == "workflowTerminated" then
    local stopped = find(steps, function(step) return step.phase == "failed" end)
    if stopped ~= nil then
      return result("Degraded", "workflow terminated at " .. describe(stopped, ""))
    end
    return result("Degraded", "workflow terminated")
  end

  if phase == "workflowSuspending" then
    local failed = find(steps, isFinallyFailed)
    if failed ~= nil or workflow.message == SUSPENDED_ON_FAILURE then
      if failed ~= nil then
        return result("Degraded", describe(failed, failedFor(failed.step.reason)))
      end
      return result("Degraded", short(workflow.message))
    end
    local waiting = find(steps, function(step) return step.phase == "suspending" end) or find(steps, isActive)
    if waiting ~= nil then
      local text = "suspended at " .. describe(waiting, "")
      if short(waiting.step.message) == "" or waiting.step.message == GENERIC_SUSPEND then
        text = text .. ": waiting for vela workflow resume"
      end
      return result("Suspended", text)
    end
    return result("Suspended", "workflow suspended")
  end

  if phase == "runningWorkflow" then
    -- reason Execute: KubeVela retries the step (up to 10 times, with backoff)
    local failed = find(steps, isFailed)
    if failed ~= nil then
      local what = failed.step.reason == "Execute" and "retrying" or failedFor(failed.step.reason)
      return result("Progressing", describe(failed, what))
    end
    local current = find(steps, isActive)
    if current ~= nil then
      return result("Progressing", describe(current, current.step.phase))
    end
    return result("Progressing", "workflow running")
  end

  if phase == "unhealthy" then
    return result("Degraded", unhealthyServices(status))
  end

  if phase == "starting" or phase == "rendering" or phase == "generatingPolicy" then
    local condition, conflict = falseCondition(status)
    if condition ~= nil then
      -- A conflict is retried on the next reconcile: not a reason to alarm anyone.
      return result(conflict and "Progressing" or "Degraded", condition)
    end
    return result("Progressing", phase)
  end

  if phase == "deleting" then
    return result("Progressing", "deleting")
  end

  return result("Progressing", "unrecognised KubeVela phase " .. tostring(phase))
end

return health(obj)
